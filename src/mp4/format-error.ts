import { AppError } from '../lib/errors';

/**
 * An MP4 we cannot read or rewrite: damaged, truncated or of a layout we do not take. It is an AppError
 * (422 BAD_MEDIA), so an API answer needs nothing more; the recorder catches it and remuxes another way.
 */
export class Mp4FormatError extends AppError {
  override readonly name = 'Mp4FormatError';
  /** what is wrong, and where when known */
  readonly reason: string;
  constructor(reason: string) {
    super('BAD_MEDIA', `damaged or unsupported MP4 [reason: ${reason}]`);
    this.reason = reason;
  }
}

/** Throw an Mp4FormatError; the box and its file offset, when given, are added to the reason. */
export function fail(reason: string, box?: string, offset?: number): never {
  throw new Mp4FormatError(box === undefined ? reason : `${reason} [box:${printable(box)}, offset:${offset ?? 0}]`);
}

/** A box type as it can be shown (bytes outside printable ASCII as '?'). */
export function printable(type: string): string {
  return type.replace(/[^\x20-\x7e]/g, '?');
}
