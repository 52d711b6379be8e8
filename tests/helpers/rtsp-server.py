#!/usr/bin/python3
"""Loopback RTSP server for edgerec tests (GstRtspServer through python3-gi, no re-encoding).

Usage: rtsp-server.py --port P [--host 127.0.0.1] --mount /name=KIND:PATH [--mount ...]
                      [--user U --password PW [--auth basic|digest]]
                      [--max-seconds S] [--clock-offset-s S]

KIND says how the clip at PATH is demuxed and paid:
  h264aac  MP4  H.264 (pt 96) + AAC mpeg4-generic (pt 97)
  h264     MP4  H.264 only
  h265     MP4  H.265 only (pt 96)
  h264pcma MKV  H.264 + G.711 A-law (static pt 8)
  h264pcmu MKV  H.264 + G.711 mu-law (static pt 0)
  mjpeg    MKV  MJPEG (static pt 26)
  aac      MP4  AAC only (an audio-only camera, pt 97)
Each mount loops its clip without gaps: the first play is a flushing SEGMENT seek on the demuxer and every
SEGMENT_DONE re-arms a non-flushing one, so running time and RTP timestamps keep increasing (no EOS, no BYE).
Port 0 lets the OS pick; the bound port is printed as "PORT <n>", then "READY" once listening.
With --user, every mount needs the credentials: GstRTSPServer answers 404, not 401, when an anonymous
default token lacks a mount's permission, so open and protected mounts cannot share one server.
--clock-offset-s S makes every media's RTCP sender reports carry wall clock + S seconds (a camera whose clock is off):
the media runs on its own realtime system clock calibrated to NTP epoch + S, and rtpbin takes its NTP time from
the pipeline clock (ntp-time-source=clock-time).
Exits on SIGTERM/SIGINT, when its parent dies, or after --max-seconds (a safety bound).
"""
import argparse
import ctypes
import os
import signal
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

# Gst must be initialised before the RTSPMedia subclass is registered (else handle-message breaks the bus).
Gst.init(None)

Q = "queue max-size-time=2000000000"
H264 = "%s ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 config-interval=-1" % Q
KINDS = {
    "h264aac": ("qtdemux", "d.video_0 ! " + H264 + " d.audio_0 ! %s ! aacparse ! rtpmp4gpay name=pay1 pt=97" % Q),
    "h264": ("qtdemux", "d.video_0 ! " + H264),
    "h265": ("qtdemux", "d.video_0 ! %s ! h265parse config-interval=-1 ! rtph265pay name=pay0 pt=96 config-interval=-1" % Q),
    "h264pcma": ("matroskademux", "d.video_0 ! " + H264 + " d.audio_0 ! %s ! rtppcmapay name=pay1" % Q),
    "h264pcmu": ("matroskademux", "d.video_0 ! " + H264 + " d.audio_0 ! %s ! rtppcmupay name=pay1" % Q),
    "mjpeg": ("matroskademux", "d.video_0 ! %s ! jpegparse ! rtpjpegpay name=pay0" % Q),
    "aac": ("qtdemux", "d.audio_0 ! %s ! aacparse ! rtpmp4gpay name=pay0 pt=97" % Q),
}
SEEK_FIRST = Gst.SeekFlags.FLUSH | Gst.SeekFlags.SEGMENT
SEEK_LOOP = Gst.SeekFlags.SEGMENT
PLAY_AFTER_SEEK_S = 0.5


NTP_UNIX_OFFSET_S = 2208988800


def offset_clock(offset_s):
    """A realtime system clock whose time is NTP time (seconds since 1900) + offset_s."""
    clock = Gst.SystemClock(clock_type=Gst.ClockType.REALTIME)
    clock.set_calibration(0, int((NTP_UNIX_OFFSET_S + offset_s) * Gst.SECOND), 1, 1)
    return clock


class LoopingMedia(GstRtspServer.RTSPMedia):
    """RTSPMedia that turns the end of the clip into a gapless segment loop."""

    def do_handle_message(self, message):
        if message.type == Gst.MessageType.SEGMENT_DONE:
            demux = self.get_element().get_by_name("d")
            demux.seek(1.0, Gst.Format.TIME, SEEK_LOOP, Gst.SeekType.SET, 0, Gst.SeekType.NONE, -1)
            return True
        return GstRtspServer.RTSPMedia.do_handle_message(self, message)

    def do_query_stop(self, *_stop):
        # An open range (npt=0-): a client told "npt=0-8" (rtspsrc's jitterbuffer) sends EOS at 8 s, loop or not.
        return False


class OffsetClockMedia(LoopingMedia):
    """LoopingMedia whose RTCP SRs take their NTP time from the pipeline clock (set to offset_clock() by the factory)."""

    def do_setup_rtpbin(self, rtpbin):
        Gst.util_set_object_arg(rtpbin, "ntp-time-source", "clock-time")
        return True  # GstRTSPMedia has no setup_rtpbin of its own to chain up to


def on_segment(pad, info, state):
    """Make loop k start at running time k x clip duration on every stream.

    The demuxer bases each looped segment on its last buffer's start (7.96 s for an 8 s clip at 25 fps), so the
    first frame of a loop would repeat the last one's RTP timestamp (rtspsrc then emits a buffer without PTS,
    mp4mux fails). An offset on the next pad moves each new segment to where the clip really ended.
    """
    ev = info.get_event()
    if ev.type != Gst.EventType.SEGMENT:
        return Gst.PadProbeReturn.OK
    seg = ev.parse_segment()
    peer = pad.get_peer()
    if seg.base == 0 or seg.stop == Gst.CLOCK_TIME_NONE or peer is None:
        state["loops"] = 0
        offset = 0
    else:
        state["loops"] += 1
        offset = state["loops"] * (seg.stop - seg.start) - seg.base
    if peer is not None:
        peer.set_offset(offset)
    return Gst.PadProbeReturn.OK


def arm_segment_seek(media):
    demux = media.get_element().get_by_name("d")
    for pad in demux.srcpads:
        pad.add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, on_segment, {"loops": 0})
    media.seeked_at = time.monotonic()
    # Seek the demuxer itself: a seek sent to the media pipeline goes to the sinks and never reaches it.
    if not demux.seek(1.0, Gst.Format.TIME, SEEK_FIRST, Gst.SeekType.SET, 0, Gst.SeekType.NONE, -1):
        print("rtsp-server: initial segment seek refused", file=sys.stderr, flush=True)


def hold_early_play(_client, ctx):
    """Hold a PLAY that comes within PLAY_AFTER_SEEK_S of the media's initial flushing seek.

    GStreamer 1.22's server aborts the whole process ("gst_rtsp_media_get_rates: assertion failed: (FALSE)") when a
    PLAY is handled before the segment of that seek has reached its streams: a fast client (edgerec's own RTSP
    client sends PLAY the moment SETUP is answered) on a loaded box met it about once in 20 sessions. Real cameras
    do not seek; this is the test server's own race.
    """
    seeked_at = getattr(ctx.media, "seeked_at", None) if ctx.media is not None else None
    if seeked_at is not None:
        wait = seeked_at + PLAY_AFTER_SEEK_S - time.monotonic()
        if wait > 0:
            time.sleep(wait)
    return GstRtsp.RTSPStatusCode.OK


def die_with_parent():
    """Ask the kernel for SIGTERM when the test process dies, so no server outlives its test."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def parse_mount(spec):
    name, _, rest = spec.partition("=")
    kind, _, path = rest.partition(":")
    if not name.startswith("/") or kind not in KINDS or not path:
        sys.exit("rtsp-server: bad --mount %r (want /name=KIND:PATH, KIND one of %s)" % (spec, ", ".join(KINDS)))
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        sys.exit("rtsp-server: no such file %s" % path)
    return name, kind, path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--mount", action="append", default=[])
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--auth", choices=["basic", "digest"], default="basic")
    ap.add_argument("--max-seconds", type=int, default=900)
    ap.add_argument("--clock-offset-s", type=float)
    a = ap.parse_args()
    if a.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("rtsp-server: refusing non-loopback host %r" % a.host)
    if bool(a.user) != bool(a.password):
        sys.exit("rtsp-server: --user and --password go together")
    die_with_parent()

    server = GstRtspServer.RTSPServer()
    server.set_address(a.host)
    server.set_service(str(a.port))
    mounts = server.get_mount_points()

    if a.user:
        auth = GstRtspServer.RTSPAuth()
        user_token = GstRtspServer.RTSPToken()
        user_token.set_string("media.factory.role", "user")
        if a.auth == "digest":
            auth.add_digest(a.user, a.password, user_token)
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        else:
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(a.user, a.password), user_token)
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
        server.set_auth(auth)

    for spec in a.mount:
        name, kind, path = parse_mount(spec)
        demux, branches = KINDS[kind]
        f = GstRtspServer.RTSPMediaFactory()
        f.set_launch('( filesrc location="%s" ! %s name=d %s )' % (path, demux, branches))
        f.set_shared(False)
        f.set_media_gtype(LoopingMedia if a.clock_offset_s is None else OffsetClockMedia)
        f.connect("media-configure", lambda _f, media: media.connect("prepared", arm_segment_seek))
        if a.clock_offset_s is not None:
            f.set_clock(offset_clock(a.clock_offset_s))
        if a.user:
            perms = GstRtspServer.RTSPPermissions()
            perms.add_permission_for_role("user", "media.factory.access", True)
            perms.add_permission_for_role("user", "media.factory.construct", True)
            f.set_permissions(perms)
        mounts.add_factory(name, f)

    server.connect("client-connected", lambda _s, client: client.connect("pre-play-request", hold_early_play))
    if server.attach(None) == 0:
        sys.exit("rtsp-server: cannot bind %s:%d" % (a.host, a.port))
    loop = GLib.MainLoop()
    GLib.timeout_add_seconds(a.max_seconds, loop.quit)
    GLib.timeout_add_seconds(2, lambda: (server.get_session_pool().cleanup(), True)[1])
    for sig in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print("PORT %d" % server.get_bound_port(), flush=True)
    print("READY", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
