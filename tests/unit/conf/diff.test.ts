import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diffConf } from '../../../src/conf/diff';
import { parseConf } from '../../../src/conf/parse';

const conf = (text: string) => parseConf(text, { installDir: '/opt/edgerec' }).conf;
const CAMS = 'camera.a.url=rtsp://h/a\ncamera.b.url=rtsp://h/b\n';

test('same text: empty diff', () => {
  const d = diffConf(conf(CAMS + 'rest_port=1'), conf(CAMS + 'rest_port=1'));
  assert.deepEqual(d, { changedKeys: [], camerasAdded: [], camerasRemoved: [], camerasChanged: [], empty: true });
});

test('global keys: changed values are listed, equal values (other spelling) are not', () => {
  const d = diffConf(conf('rest_port=1\nrecord_rotation=20\nrecord_streams=true'), conf('rest_port=2\nrecord_rotation=10M\nrecord_streams=TRUE'));
  assert.deepEqual(d.changedKeys, ['record_rotation', 'rest_port']);
  assert.equal(d.empty, false);
});

test('derived keys change with record_dir; nested objects compare deeply', () => {
  const d = diffConf(conf('record_dir=/a\nwebrtc_ice_port_range=1-2'), conf('record_dir=/b\nwebrtc_ice_port_range=1-3'));
  assert.deepEqual(d.changedKeys, ['record_dir', 'record_tmp_dir', 'mp4_cutter_dir', 'webrtc_ice_port_range', 'db_path']);
  assert.deepEqual(diffConf(conf('webrtc_ice_port_range=1-2'), conf('webrtc_ice_port_range=1 - 2')).empty, true);
});

test('cameras added, removed and changed', () => {
  const d = diffConf(conf(CAMS + 'camera.c.url=rtsp://h/c'), conf('camera.a.url=rtsp://h/a\ncamera.a.rotation=10\ncamera.c.url=rtsp://h/c\ncamera.z.url=rtsp://h/z\ncamera.d.url=rtsp://h/d'));
  assert.deepEqual(d, { changedKeys: [], camerasAdded: ['d', 'z'], camerasRemoved: ['b'], camerasChanged: ['a'], empty: false });
});

test('a camera url change (credentials only) is a change', () => {
  const d = diffConf(conf('camera.a.url=rtsp://u:1@h/a'), conf('camera.a.url=rtsp://u:2@h/a'));
  assert.deepEqual(d.camerasChanged, ['a']);
});
