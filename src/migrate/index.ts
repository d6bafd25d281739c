// Migration pipelines: the protocol driver joined to the stream format, and
// the network leg between a source and a destination.
export { saveDevice, type SaveDeviceResult } from "./save-stream.js";
export { streamItems, type StreamItemsOptions, type StreamEnd } from "./items.js";
export { saveTo, restartSource, type SaveToOptions, type SaveToResult, type SaveStep } from "./save-to.js";
export { restoreDevice, checkFits, regionCapacity, type RestoreOptions } from "./restore-stream.js";
export { saveDevices, saveDevicesTo, type SaveDevicesMember, type SaveDevicesResult, type SaveDevicesToOptions, type SaveDevicesToResult, type SavedDevice } from "./save-devices.js";
export { restoreDevices, type RestoreDevicesMember, type RestoreDevicesOptions, type RestoreDevicesResult, type RestoredDevice } from "./restore-devices.js";
export { StreamDemux, DEVICE_QUEUE_BYTES, type StreamDemuxOptions, type StreamHead, type StreamDevice } from "./demux.js";
export { StatsCollector, QEMU_BUFFER_OVERHEAD, type StreamStats, type DeviceStats, type PhaseStats, type CodecUse } from "./stats.js";
export { type Ack, type AckDevice, encodeAck, parseAck, failureAck, devicesAck, ackError, trailingError, BUSY_MESSAGE, MAX_ACK_BYTES, MAX_ACK_MESSAGE } from "./ack.js";
export { type Hello, encodeHello, parseHello, newChallenge, HELLO_SIZE, CHALLENGE_SIZE } from "./hello.js";
export { type ByteSink, writableSink, type WritableSinkOptions } from "./sink.js";
export {
  TcpListener,
  TcpPeer,
  TcpDestination,
  parseTcpUrl,
  formatTcpUrl,
  isLoopback,
  type TcpAddress,
  type TcpAcceptOptions,
  type TcpConnectOptions,
  type TcpListenOptions,
  DEFAULT_LISTEN_HOST,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_ACK_TIMEOUT_MS,
  CONNECT_RETRY_MS,
  FAILURE_LINGER_MS,
} from "./tcp.js";
