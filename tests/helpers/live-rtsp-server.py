#!/usr/bin/python3
"""A live RTSP camera for edgerec tests: one shared mount /live, encoded live (x264enc with B-frames, 2 s GOP, +
AAC), so a client that joins later joins wherever the GOP stands, as with a real camera.

Usage: live-rtsp-server.py [--port 0] [--max-seconds 300]. Prints "PORT <n>", then "READY". Exits on
SIGTERM/SIGINT, when its parent dies, or after --max-seconds.
"""
import argparse
import ctypes
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

LAUNCH = (
    "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=25/1 "
    "! x264enc tune=zerolatency speed-preset=ultrafast bframes=2 key-int-max=50 b-adapt=false "
    "! video/x-h264,profile=main ! rtph264pay name=pay0 pt=96 config-interval=1 "
    "audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=44100,channels=2 ! avenc_aac ! rtpmp4gpay name=pay1 pt=97 )"
)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--max-seconds", type=int, default=300)
    a = ap.parse_args()
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(a.port))
    f = GstRtspServer.RTSPMediaFactory()
    f.set_launch(LAUNCH)
    f.set_shared(True)
    server.get_mount_points().add_factory("/live", f)
    if server.attach(None) == 0:
        sys.exit("live-rtsp-server: cannot bind")
    loop = GLib.MainLoop()
    GLib.timeout_add_seconds(a.max_seconds, loop.quit)
    for sig in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print("PORT %d" % server.get_bound_port(), flush=True)
    print("READY", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
