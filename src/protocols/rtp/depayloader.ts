import type { RtpPacket } from './packet';

/** What a depayloader needs to know of a track: its media, payload type, encoding name, clock and fmtp (an SDP section gives them). */
export interface RtpFormat {
  readonly media: 'video' | 'audio';
  readonly payloadType: number;
  /** RTP encoding name as written (compare case-insensitively), or the RFC 3551 name of a static payload type; '' when unknown */
  readonly encodingName: string;
  /** Hz; 0 when unknown */
  readonly clockRate: number;
  readonly channels?: number;
  /** a=fmtp parameters, keys lower-cased */
  readonly fmtp: Readonly<Record<string, string>>;
}

/** One access unit: a whole video frame in Annex B byte-stream form, or one audio frame. */
export interface AccessUnit {
  readonly data: Buffer;
  /** RTP timestamp of the unit (32-bit, as sent) */
  readonly rtpTime: number;
  /** video: an IDR / IRAP frame (the recording may start here) */
  readonly key: boolean;
}

export interface Depayloader {
  /** the caps of what push() returns, for the appsrc that takes it */
  readonly caps: string;
  /**
   * Feed one packet; returns the units it completes (usually zero or one), each in a Buffer of its own (video
   * with `lend`: a view into the depayloader's frame buffer, valid until the next push()).
   * The packet's payload need only be valid during the call (it may be a view into a reused read buffer):
   * whatever must outlive the call is copied.
   */
  push(p: RtpPacket): AccessUnit[];
}

export interface DepayOptions {
  /**
   * Video frames leave as views into the depayloader's reused frame buffer, valid until the next push(): for a
   * consumer that copies them at once (appsrc's push does), no Buffer is made per frame.
   */
  readonly lend?: boolean;
}
