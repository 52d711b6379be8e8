import { timingSafeEqual } from 'node:crypto';

/** Constant-time comparison of two secrets. */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Whether the publish token `want` is shown in one of a command's URLs or stream names (`...?token=`): the
 * connect command's tcUrl and app, releaseStream's and FCPublish's stream name. 'none' when `want` is empty or
 * no carrier has a token (the publish command is where it must be then).
 */
export function tokenShown(carriers: readonly unknown[], want: string): 'right' | 'wrong' | 'none' {
  if (!want) return 'none';
  for (const c of carriers) {
    if (typeof c !== 'string') continue;
    const q = c.indexOf('?');
    if (q < 0) continue;
    const got = new URLSearchParams(c.slice(q + 1)).get('token');
    if (got !== null) return sameSecret(got, want) ? 'right' : 'wrong';
  }
  return 'none';
}
