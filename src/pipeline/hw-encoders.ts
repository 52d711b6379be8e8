import { execFile } from 'node:child_process';
import { DEFAULT_H264_ENCODER } from './launch-codec';

/** Hardware H.264 encoders looked for in the GStreamer registry, in order of preference. */
export const HW_H264_ENCODERS = ['v4l2h264enc', 'vah264enc', 'vaapih264enc', 'mpph264enc', 'nvh264enc'] as const;

export type HwH264Encoder = (typeof HW_H264_ENCODERS)[number];

/** gst-launch fragment per hardware encoder: a keyframe every 2 s at 25 fps, like the software default. */
const FRAGMENT: Record<HwH264Encoder, string> = {
  v4l2h264enc: 'v4l2h264enc extra-controls="controls,h264_i_frame_period=50"',
  vah264enc: 'vah264enc key-int-max=50',
  vaapih264enc: 'vaapih264enc keyframe-period=50',
  mpph264enc: 'mpph264enc gop=50',
  nvh264enc: 'nvh264enc gop-size=50',
};

/** What the probe found: hardware encoders present and the encoder used when MJPEG becomes H.264. */
export interface H264EncoderChoice {
  readonly hardware: readonly HwH264Encoder[];
  /** element name of the encoder in use (x264enc when no hardware one was found) */
  readonly mjpegEncoder: string;
}

let chosen: { readonly choice: H264EncoderChoice; readonly fragment: string } = {
  choice: { hardware: [], mjpegEncoder: 'x264enc' },
  fragment: DEFAULT_H264_ENCODER,
};

function exists(element: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('gst-inspect-1.0', ['--exists', element], { timeout: timeoutMs }, (err) => resolve(!err));
  });
}

/**
 * Look the hardware H.264 encoders up in the GStreamer registry (once, at start) and use the first one found for
 * MJPEG → H.264; software x264enc otherwise. A registry entry means the plugin found its device at scan time.
 */
export async function probeH264Encoders(timeoutMs = 10_000): Promise<H264EncoderChoice> {
  const found = await Promise.all(HW_H264_ENCODERS.map(async (e) => ((await exists(e, timeoutMs)) ? e : null)));
  const hardware = found.filter((e): e is HwH264Encoder => e !== null);
  const first = hardware[0];
  chosen = first
    ? { choice: { hardware, mjpegEncoder: first }, fragment: FRAGMENT[first] }
    : { choice: { hardware, mjpegEncoder: 'x264enc' }, fragment: DEFAULT_H264_ENCODER };
  return chosen.choice;
}

/** The probe's result so far (software only before probeH264Encoders() resolved). */
export function h264EncoderChoice(): H264EncoderChoice {
  return chosen.choice;
}

/** The gst-launch fragment that encodes raw video to H.264 for MJPEG sources (describePipeline's h264Encoder). */
export function mjpegH264Encoder(): string {
  return chosen.fragment;
}
