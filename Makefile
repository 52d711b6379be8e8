# edgerec: `make run` sets up what is missing and starts the service; `make test` sets up and runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := run

CONF ?= conf/edgerec.properties
export npm_config_nodedir ?= /usr

# Needed to build the native modules and to run the service.
APT_RUN := build-essential python3 pkg-config \
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev \
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-nice
# Needed only by the tests: real publishers, a real RTSP server, ffprobe, a browser, unit checks (time: CPU per test file).
APT_TEST := ffmpeg chromium python3-gi gir1.2-gst-rtsp-server-1.0 libgstrtspserver-1.0-0 \
  gir1.2-gst-plugins-bad-1.0 systemd procps util-linux mount \
  vlc-bin vlc-plugin-base swift-proxy swift-object swift-container swift-account time
# Needed only by bench/ (reference recorders, load tools, and perf for profiling the media host).
APT_BENCH := libnginx-mod-rtmp nginx-light wrk linux-perf

define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi
endef

.PHONY: run test setup setup-test setup-bench build deps unit integration clean bench
setup:
	$(call apt_install,$(APT_RUN))
	@$(MAKE) --no-print-directory deps build

setup-test:
	$(call apt_install,$(APT_RUN) $(APT_TEST))
	@$(MAKE) --no-print-directory deps build

setup-bench: setup-test
	$(call apt_install,$(APT_BENCH))

deps: node_modules/.edgerec-stamp
node_modules/.edgerec-stamp: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build:
	@npx tsc -p tsconfig.json

run: setup
	node dist/src/main.js --conf $(CONF)

# Every test file: integration files one at a time (they start real media peers), and beside them, one at a time,
# the unit files and the integration files that mostly wait (tests/run.ts says which and how to place a new file).
test: setup-test
	node dist/tests/run.js

unit: build
	node --test $$(find dist/tests/unit -name '*.test.js' | sort)

integration: build
	node --test --test-concurrency=1 --test-timeout=180000 $$(find dist/tests/integration -name '*.test.js' | sort)

bench: setup-bench
	@echo "see bench/README.md for the bench scripts"

clean:
	rm -rf dist build-*
