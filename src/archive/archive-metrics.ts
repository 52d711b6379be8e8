import { Counter, Gauge, type Registry } from 'prom-client';
import type { Backlog } from './archive-store';

/** What the archive gauges read at scrape time. */
export interface ArchiveMetricsSources {
  backlog(): Backlog;
  /** 1 store answered, 0 not, -1 archiving off */
  storeUp(): number;
}

/** The archive's Prometheus metrics (uploaded bytes/files, failures by kind, backlog, store up). */
export class ArchiveMetrics {
  readonly uploadedBytes: Counter;
  readonly uploadedFiles: Counter;
  readonly failures: Counter<'kind'>;

  constructor(registry: Registry, src: ArchiveMetricsSources) {
    const registers = [registry];
    this.uploadedBytes = new Counter({ name: 'edgerec_archive_uploaded_bytes_total', help: 'bytes uploaded to the archive and verified', registers });
    this.uploadedFiles = new Counter({ name: 'edgerec_archive_uploaded_files_total', help: 'files uploaded to the archive and verified', registers });
    this.failures = new Counter({ name: 'edgerec_archive_failures_total', help: 'failed upload attempts by kind (config, unreachable, file, gone)', labelNames: ['kind'], registers });
    new Gauge({
      name: 'edgerec_archive_backlog_files',
      help: 'finished files not archived yet',
      registers,
      collect() {
        this.set(src.backlog().files);
      },
    });
    new Gauge({
      name: 'edgerec_archive_backlog_bytes',
      help: 'bytes of finished files not archived yet',
      registers,
      collect() {
        this.set(src.backlog().bytes);
      },
    });
    new Gauge({
      name: 'edgerec_archive_backlog_oldest_seconds',
      help: 'age of the oldest file not archived yet (0 when none)',
      registers,
      collect() {
        const o = src.backlog().oldestMs;
        this.set(o === null ? 0 : Math.max(0, (Date.now() - o) / 1000));
      },
    });
    new Gauge({
      name: 'edgerec_archive_store_up',
      help: '1 when the archive store answered the last request, 0 when not, -1 when archiving is off',
      registers,
      collect() {
        this.set(src.storeUp());
      },
    });
  }
}
