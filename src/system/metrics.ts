import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { diskUsage } from './disk';

/** What the metrics read at scrape time. */
export interface MetricsSources {
  streams(): Record<string, number>;
  recordingsActive(): number;
  dirs(): { record: string; tmp: string };
  hosts(): number;
}

/** Prometheus metrics of the service (prom-client: a well-kept exposition format implementation). */
export class Metrics {
  readonly registry = new Registry();
  readonly bytesWritten: Counter;
  readonly filesFinalized: Counter;
  readonly filesFailed: Counter;
  readonly finalizeSeconds: Histogram;
  readonly reconnects: Counter<'stream'>;
  readonly publishRejected: Counter<'protocol'>;
  readonly orphanPipelines: Counter;
  readonly rtmpDropped: Counter<'reason'>;
  readonly timestampRepairs: Counter<'stream' | 'kind'>;

  constructor(src: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'edgerec_process_' });
    new Gauge({
      name: 'edgerec_streams',
      help: 'live streams by source protocol',
      labelNames: ['protocol'],
      registers,
      collect() {
        for (const [p, n] of Object.entries(src.streams())) this.set({ protocol: p }, n);
      },
    });
    new Gauge({
      name: 'edgerec_recordings_active',
      help: 'recordings running now',
      registers,
      collect() {
        this.set(src.recordingsActive());
      },
    });
    new Gauge({
      name: 'edgerec_media_hosts',
      help: 'GStreamer host processes alive',
      registers,
      collect() {
        this.set(src.hosts());
      },
    });
    new Gauge({
      name: 'edgerec_disk_free_bytes',
      help: 'free bytes on the filesystem of record_dir and record_tmp_dir',
      labelNames: ['dir'],
      registers,
      async collect() {
        const d = src.dirs();
        for (const [label, path] of [['record', d.record], ['tmp', d.tmp]] as const) {
          const u = await diskUsage(path).catch(() => null);
          if (u) this.set({ dir: label }, u.freeBytes);
        }
      },
    });
    const counter = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []) => new Counter<L>({ name, help, labelNames, registers });
    this.bytesWritten = counter('edgerec_bytes_written_total', 'bytes of finished files');
    this.filesFinalized = counter('edgerec_files_finalized_total', 'files finalized into record_dir');
    this.filesFailed = counter('edgerec_files_failed_total', 'fragments whose finalization failed');
    this.finalizeSeconds = new Histogram({
      name: 'edgerec_finalize_duration_seconds',
      help: 'time from fragment close to file in record_dir',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.reconnects = counter('edgerec_camera_reconnects_total', 'RTSP reconnect attempts', ['stream']);
    this.orphanPipelines = counter('edgerec_orphan_pipelines_stopped_total', 'pipelines no recording owned, ended by the reconciliation');
    this.rtmpDropped = counter(
      'edgerec_rtmp_pending_dropped_total',
      'RTMP connections dropped before publishing: pending-cap (displaced by a newer one), deadline, limit (a size bound), protocol (not RTMP)',
      ['reason'],
    );
    this.timestampRepairs = counter('edgerec_timestamp_repairs', 'timestamps repaired at the ingest boundary (nudged, clipped, rebased, dropped) by stream', ['stream', 'kind']);
    this.publishRejected = counter('edgerec_publish_rejected_total', 'publishers refused', ['protocol']);
  }
}
