/** Typed, frozen configuration. Field names are the property keys of conf/edgerec.properties. */

/** record_rotation: N seconds, N megabytes, or off. */
export type Rotation =
  | { readonly kind: 'disabled' }
  | { readonly kind: 'seconds'; readonly seconds: number }
  | { readonly kind: 'megabytes'; readonly megabytes: number };

/** encode_record_name: none, or the whole templated name encoded as HEX / BASE64. */
export type NameEncoding = 'none' | 'hex' | 'base64';

/** A size bound: a number of bytes, or a percentage of the disk that holds the folder it bounds. */
export type ByteQuota = { readonly kind: 'bytes'; readonly bytes: number } | { readonly kind: 'percent'; readonly percent: number };

/** One camera.<name>.* group. */
export interface CameraConf {
  readonly name: string;
  /** rtsp:// URL, may hold credentials: never log it raw (redactUrl). */
  readonly url: string;
  readonly transport: 'tcp' | 'udp';
  readonly record: boolean;
  /** per-camera stream_record_policy_template, null = global */
  readonly template: string | null;
  /** per-camera record_rotation, null = global */
  readonly rotation: Rotation | null;
}

export interface Conf {
  readonly record_streams: boolean;
  readonly record_flash_published_streams: boolean;
  readonly record_rtsp_streams: boolean;
  readonly record_webrtc_streams: boolean;
  readonly record_h264_to_ts: boolean;
  readonly stream_record_policy_template: string;
  readonly encode_record_name: NameEncoding;
  readonly exclude_record_name_characters: string;
  readonly record_rotation: Rotation;
  readonly record_rotation_index_enabled: boolean;
  readonly record_audio_buffer_max_size: number;
  /** absolute path, or '' for no hook */
  readonly on_record_hook_script: string;
  /** s, hook killed after this */
  readonly on_record_hook_timeout: number;
  /** absolute */
  readonly record_dir: string;
  /** absolute; defaults to record_dir */
  readonly record_tmp_dir: string;
  readonly record_audio_codec_sample_rate: number;
  readonly record_audio_codec_channels: number;
  readonly record_fdk_aac_bitrate_mode: number;
  readonly mp4_container_moov_first: boolean;
  readonly mp4_container_moov_first_reserve_space: boolean;
  /** KiB */
  readonly mp4_container_moov_reserved_space_size: number;
  readonly file_recorder_thread_pool_max_size: number;
  /** ms */
  readonly webm_cluster_duration_limit: number;
  /** bytes */
  readonly webm_cluster_size_limit: number;
  /** s */
  readonly record_stop_timeout: number;
  readonly record_write_ahead_seconds: number;
  readonly record_response_content_disposition_header_value: 'inline' | 'attachment';
  /** absolute; defaults to record_dir */
  readonly mp4_cutter_dir: string;
  /** bytes or % of the cut folder's disk */
  readonly mp4_cutter_max_bytes: ByteQuota;
  /** s; longest range of one /rest-api/playback answer */
  readonly playback_max_duration: number;
  readonly rest_port: number;
  readonly rest_bind: string;
  readonly rtmp_port: number;
  readonly rtmp_max_pending_connections: number;
  readonly rtmp_max_pending_per_ip: number;
  /** s */
  readonly rtmp_handshake_timeout: number;
  /** bytes */
  readonly rtmp_max_message_size: number;
  /** bytes */
  readonly rtmp_max_chunk_size: number;
  /** bytes */
  readonly rtmp_max_pending_bytes: number;
  readonly webrtc_ice_port_range: { readonly min: number; readonly max: number };
  /** '' = auto */
  readonly webrtc_public_ip: string;
  readonly webrtc_max_media_sections: number;
  readonly rest_auth_token: string;
  readonly publish_auth_token: string;
  /** days, 0 = off */
  readonly record_retention_days: number;
  /** percent */
  readonly record_min_free_percent: number;
  /** archive: S3 endpoint URL, '' = archiving off */
  readonly archive_s3_endpoint: string;
  readonly archive_s3_bucket: string;
  readonly archive_s3_region: string;
  /** secret: never logged nor shown */
  readonly archive_s3_access_key: string;
  /** secret: never logged nor shown */
  readonly archive_s3_secret_key: string;
  /** absolute path of a file holding both keys, or '' */
  readonly archive_s3_credentials_file: string;
  readonly archive_s3_force_path_style: boolean;
  /** object key template: {boxId} {streamName} {date} {fileName} */
  readonly archive_key_template: string;
  /** defaults to the host name */
  readonly box_id: string;
  /** days; -1 keep local copies forever, 0 delete once archived */
  readonly archive_keep_local_days: number;
  /** bytes/s, 0 = no limit */
  readonly archive_max_bandwidth: number;
  /** uploads at once */
  readonly archive_concurrency: number;
  /** absolute; defaults to <record_dir>/edgerec.db */
  readonly db_path: string;
  /** number of GStreamer host processes */
  readonly media_host_count: number;
  /** s, first RTSP reconnect delay */
  readonly rtsp_reconnect_min_delay: number;
  /** s, reconnect delay cap */
  readonly rtsp_reconnect_max_delay: number;
  /** s without media before a camera counts as lost */
  readonly rtsp_stall_timeout: number;
  readonly rtsp_client: 'edgerec' | 'gstreamer';
  readonly log_level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  /** by camera name */
  readonly cameras: Readonly<Record<string, CameraConf>>;
}
