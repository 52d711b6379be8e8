import type { Samples } from './sample-table';

/** One track of a movie stitched from recorded files: every sample it plays, in decode order, with where its bytes are. */
export interface MovieTrack extends Omit<Samples, 'stsd'> {
  readonly handler: string;
  readonly timescale: number;
  /** trak body of the first file holding this kind of track (tkhd, mdhd, hdlr, ... are copied from it) */
  readonly template: Buffer;
  /** distinct sample entries (stsd children) over all files */
  readonly entries: Buffer[];
  /** index of the source file (the caller's list) */
  readonly file: number[];
  /** byte offset in that file */
  readonly src: number[];
  readonly size: number[];
  /** decode time on the answer's timeline (this track's timescale); the first video sample is at 0 */
  readonly dts: number[];
  readonly dur: number[];
  readonly cts: number[];
  readonly sync: boolean[];
  /** 1-based index into entries */
  readonly sdi: number[];
  /** composition offset of the first sample: the edit list starts the presentation there */
  cts0: number;
}

