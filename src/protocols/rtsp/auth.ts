import { createHash, randomBytes } from 'node:crypto';

/** One WWW-Authenticate challenge: scheme lower-cased, parameters with lower-cased keys and unquoted values. */
export interface AuthChallenge {
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

/** Credentials taken from a camera URL. */
export interface Credentials {
  readonly user: string;
  readonly password: string;
}

/** Parse WWW-Authenticate header values (one challenge each, as cameras send them). */
export function parseChallenges(values: readonly string[]): AuthChallenge[] {
  const out: AuthChallenge[] = [];
  for (const v of values) {
    const m = /^\s*([A-Za-z][\w-]*)\s*(.*)$/.exec(v);
    if (!m) continue;
    const params: Record<string, string> = {};
    const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
    const rest = m[2] ?? '';
    for (let p = re.exec(rest), i = 0; p && i < 50; p = re.exec(rest), i++) {
      params[(p[1] ?? '').toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
    }
    out.push({ scheme: (m[1] ?? '').toLowerCase(), params });
  }
  return out;
}

const md5 = (s: string): string => createHash('md5').update(s, 'utf8').digest('hex');

/**
 * The Authorization header value answering the best challenge we support (Digest MD5 / MD5-sess with qop=auth or
 * no qop, else Basic); null when none is supported. `cnonce` is for tests; a random one is made otherwise.
 */
export function authorization(
  challenges: readonly AuthChallenge[],
  creds: Credentials,
  req: { readonly method: string; readonly uri: string; readonly nc?: number; readonly cnonce?: string },
): string | null {
  const digest = challenges.find((c) => c.scheme === 'digest' && /^(md5|md5-sess)?$/i.test(c.params.algorithm ?? ''));
  if (digest) {
    const p = digest.params;
    const realm = p.realm ?? '';
    const nonce = p.nonce ?? '';
    const qops = (p.qop ?? '').split(',').map((q) => q.trim().toLowerCase()).filter(Boolean);
    // A qop list without "auth" (only auth-int) would need the body hashed: not worth it for DESCRIBE.
    if (qops.length === 0 || qops.includes('auth')) {
      const cnonce = req.cnonce ?? randomBytes(8).toString('hex');
      const nc = (req.nc ?? 1).toString(16).padStart(8, '0');
      let ha1 = md5(`${creds.user}:${realm}:${creds.password}`);
      if (/^md5-sess$/i.test(p.algorithm ?? '')) ha1 = md5(`${ha1}:${nonce}:${cnonce}`);
      const ha2 = md5(`${req.method}:${req.uri}`);
      const parts = [`username="${quote(creds.user)}"`, `realm="${quote(realm)}"`, `nonce="${quote(nonce)}"`, `uri="${quote(req.uri)}"`];
      if (qops.length) {
        parts.push(`response="${md5(`${ha1}:${nonce}:${nc}:${cnonce}:auth:${ha2}`)}"`, 'qop=auth', `nc=${nc}`, `cnonce="${cnonce}"`);
      } else {
        parts.push(`response="${md5(`${ha1}:${nonce}:${ha2}`)}"`);
      }
      if (p.algorithm) parts.push(`algorithm=${p.algorithm}`);
      if (p.opaque !== undefined) parts.push(`opaque="${quote(p.opaque)}"`);
      return `Digest ${parts.join(', ')}`;
    }
  }
  if (challenges.some((c) => c.scheme === 'basic')) {
    return `Basic ${Buffer.from(`${creds.user}:${creds.password}`, 'utf8').toString('base64')}`;
  }
  return null;
}

function quote(s: string): string {
  return s.replace(/(["\\])/g, '\\$1');
}
