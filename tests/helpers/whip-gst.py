#!/usr/bin/python3
"""A GStreamer webrtcbin WHIP publisher (a third-party peer for edgerec tests).

Usage: whip-gst.py URL --video vp8|h264 [--seconds 8] [--bundle max-bundle]
Publishes a live test pattern (+ an Opus tone) with webrtcbin, whose default offer (bundle-policy=max-bundle)
marks every m-line after the first "port 0 + a=bundle-only". POSTs the offer once ICE gathering is complete,
applies the answer, publishes for --seconds, DELETEs the session and exits 0. Prints "ANSWERED" and "DONE".
"""
import argparse
import ctypes
import signal
import sys
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

VIDEO = {
    "vp8": "vp8enc deadline=1 cpu-used=8 keyframe-max-dist=25 target-bitrate=500000 ! rtpvp8pay pt=96 ! "
    "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000",
    "h264": "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 ! video/x-h264,profile=constrained-baseline ! "
    "rtph264pay pt=102 config-interval=-1 aggregate-mode=zero-latency ! "
    "application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--video", choices=list(VIDEO), default="vp8")
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--bundle", default="max-bundle")
    a = ap.parse_args()
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    Gst.init(None)
    pipe = Gst.parse_launch(
        "webrtcbin name=w bundle-policy=%s "
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=25/1 ! %s ! w. "
        "audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! opusenc ! rtpopuspay pt=111 ! "
        "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000 ! w." % (a.bundle, VIDEO[a.video])
    )
    w = pipe.get_by_name("w")
    loop = GLib.MainLoop()
    state = {"location": None, "sent": False}

    def post_offer():
        if state["sent"]:
            return
        state["sent"] = True
        offer = w.get_property("local-description").sdp.as_text()
        req = urllib.request.Request(a.url, data=offer.encode(), method="POST", headers={"Content-Type": "application/sdp"})
        try:
            with urllib.request.urlopen(req, timeout=15) as r:
                answer = r.read().decode()
                state["location"] = r.headers.get("Location")
        except Exception as e:  # noqa: BLE001
            print("POST failed: %s" % e, flush=True)
            loop.quit()
            sys.exit(2)
        _, msg = GstSdp.SDPMessage.new_from_text(answer)
        w.emit("set-remote-description", GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg), Gst.Promise.new())
        print("ANSWERED", flush=True)
        GLib.timeout_add(int(a.seconds * 1000), finish)

    def finish():
        loc = state["location"]
        if loc:
            base = a.url.split("/whip/")[0]
            try:
                urllib.request.urlopen(urllib.request.Request(loc if loc.startswith("http") else base + loc, method="DELETE"), timeout=5)
            except Exception as e:  # noqa: BLE001
                print("DELETE failed: %s" % e, flush=True)
        print("DONE", flush=True)
        loop.quit()
        return False

    def on_gathering(*_):
        if w.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            GLib.idle_add(post_offer)

    def on_offer(promise, _):
        reply = promise.get_reply()
        offer = reply.get_value("offer")
        if offer is None:
            print("no offer: %s" % reply.to_string(), flush=True)
            return
        w.emit("set-local-description", offer, Gst.Promise.new())

    def on_negotiation(_):
        w.emit("create-offer", None, Gst.Promise.new_with_change_func(on_offer, None))

    w.connect("on-negotiation-needed", on_negotiation)
    w.connect("notify::ice-gathering-state", on_gathering)
    pipe.set_state(Gst.State.PLAYING)
    GLib.timeout_add_seconds(int(a.seconds) + 30, loop.quit)
    for sig in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    loop.run()
    pipe.set_state(Gst.State.NULL)


if __name__ == "__main__":
    main()
