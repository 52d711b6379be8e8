import type { ConfDiff } from '../../conf/diff';
import type { CameraConf, Conf } from '../../conf/types';
import { log as rootLog } from '../../lib/log';
import type { RecordingManager } from '../../recorder/manager';
import { Camera, type CameraOptions } from './camera';

/** The cameras of the config: each pulled and supervised; hot add / remove / change touches that camera alone. */
export class RtspCameras {
  readonly name = 'rtsp';
  private readonly cameras = new Map<string, Camera>();
  private readonly log = rootLog.child({ component: 'rtsp' });

  constructor(
    private readonly o: CameraOptions,
    private readonly manager: RecordingManager,
  ) {}

  /** Whether a camera records by default: record_streams, record_rtsp_streams and camera.<name>.record. */
  static shouldRecord(conf: Conf, cam: CameraConf): boolean {
    return conf.record_streams && conf.record_rtsp_streams && cam.record;
  }

  start(): void {
    for (const cam of Object.values(this.o.conf().cameras)) this.add(cam);
  }

  async applyConf(conf: Conf, diff: ConfDiff): Promise<void> {
    const work: Promise<void>[] = [];
    for (const name of diff.camerasRemoved) work.push(this.remove(name));
    for (const name of diff.camerasAdded) {
      const cam = conf.cameras[name];
      if (cam) this.add(cam);
    }
    for (const name of diff.camerasChanged) {
      const cam = conf.cameras[name];
      const cur = this.cameras.get(name);
      if (!cam || !cur) continue;
      // A new URL or transport reconnects; record/template/rotation only swap the pipeline's mode.
      work.push(cur.update(cam).then(() => this.syncRecording(cur, conf, cam)));
    }
    if (diff.changedKeys.some((k) => k === 'record_rtsp_streams' || k === 'record_streams' || k === 'stream_record_policy_template' || k === 'record_rotation')) {
      for (const [name, cur] of this.cameras) {
        const cam = conf.cameras[name];
        if (cam && !diff.camerasChanged.includes(name)) work.push(this.syncRecording(cur, conf, cam));
      }
    }
    await Promise.all(work);
  }

  /** Cameras for health. */
  health(): Record<string, unknown> {
    const cams: Record<string, unknown> = {};
    for (const [name, c] of this.cameras) cams[name] = { status: c.status(), recording: c.recorder() !== null, ...c.details() };
    return { cameras: cams };
  }

  async close(): Promise<void> {
    await Promise.all([...this.cameras.keys()].map((n) => this.remove(n)));
  }

  private add(cam: CameraConf): void {
    if (this.cameras.has(cam.name)) return;
    const c = new Camera(cam, this.o);
    this.cameras.set(cam.name, c);
    this.manager.addStream(c, { record: RtspCameras.shouldRecord(this.o.conf(), cam), controller: c });
    c.start();
    this.log.info({ stream: cam.name }, 'camera added');
  }

  private async remove(name: string): Promise<void> {
    const c = this.cameras.get(name);
    if (!c) return;
    this.cameras.delete(name);
    await this.manager.removeStream(c.mediaSessionId);
    await c.close();
    this.log.info({ stream: name }, 'camera removed');
  }

  private async syncRecording(c: Camera, conf: Conf, cam: CameraConf): Promise<void> {
    const want = RtspCameras.shouldRecord(conf, cam);
    const settings = want ? this.manager.settingsFor(c) : null;
    const cur = c.recorder();
    if (!want && !cur) return;
    await c.setRecording(settings);
  }
}
