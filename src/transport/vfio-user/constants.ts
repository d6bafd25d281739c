// vfio-user protocol 0.2 constants: message header, commands, flags, the VFIO
// structures carried in payloads, and our own limits. All integers on the wire
// are little-endian; all structures are packed.

/** Every message starts with this header: msg_id u16, cmd u16, msg_size u32, flags u32, error_no u32. */
export const HEADER_SIZE = 16;

export const PROTOCOL_MAJOR = 0;
export const PROTOCOL_MINOR = 2;

/** Command numbers (header `cmd`). */
export const CMD = {
  VERSION: 1,
  DMA_MAP: 2,
  DMA_UNMAP: 3,
  DEVICE_GET_INFO: 4,
  DEVICE_GET_REGION_INFO: 5,
  DEVICE_GET_REGION_IO_FDS: 6,
  DEVICE_GET_IRQ_INFO: 7,
  DEVICE_SET_IRQS: 8,
  REGION_READ: 9,
  REGION_WRITE: 10,
  DMA_READ: 11,
  DMA_WRITE: 12,
  DEVICE_RESET: 13,
  DIRTY_PAGES: 14,
  /** vfio-user v2 migration (libvfio-user ≥ 190f85bf): VFIO_DEVICE_FEATURE over the socket. */
  DEVICE_FEATURE: 16,
  MIG_DATA_READ: 17,
  MIG_DATA_WRITE: 18,
} as const;

/** struct vfio_user_mig_data header: argsz u32, size u32 (data follows). */
export const MIG_DATA_HEADER_SIZE = 8;
/** Largest MIG_DATA_READ/WRITE `size` a libvfio-user server takes (its default max_data_xfer_size). */
export const MAX_MIG_DATA = 1 << 20;
/** Where our v2 servers put the state-digest region (there is no migration region to follow). */
export const V2_DIGEST_REGION_INDEX = 9;

/** Header flags: bits 0-3 are the message type. */
export const FLAG_TYPE_MASK = 0xf;
export const TYPE_COMMAND = 0;
export const TYPE_REPLY = 1;
export const FLAG_NO_REPLY = 0x10;
export const FLAG_ERROR = 0x20;

/** `max_data_xfer_size` when the peer states none (the specification's default). */
export const DEFAULT_MAX_DATA_XFER = 1 << 20;
/** The largest `max_data_xfer_size` we accept or offer, whatever a peer says. */
export const MAX_DATA_XFER_LIMIT = 16 << 20;
/** Page size we state in the VERSION `migration` capability (servers refuse others). */
export const MIGRATION_PGSIZE = 4096;

/** REGION_READ/REGION_WRITE payload prefix: offset u64, region u32, count u32. */
export const REGION_ACCESS_SIZE = 16;
/** struct vfio_device_info as vfio-user carries it: argsz, flags, num_regions, num_irqs. */
export const DEVICE_INFO_SIZE = 16;
/** struct vfio_region_info: argsz, flags, index, cap_offset, size u64, offset u64. */
export const REGION_INFO_SIZE = 32;
/** struct vfio_info_cap_header: id u16, version u16, next u32. */
export const CAP_HEADER_SIZE = 8;

/** Largest region-info reply (argsz) we accept: caps beyond this are a lying server. */
export const MAX_REGION_INFO_SIZE = 64 << 10;
/** Longest capability chain we walk. */
export const MAX_CAPS = 64;
/** Largest VERSION JSON we accept or send. */
export const MAX_VERSION_JSON = 16 << 10;
/** Bytes allowed on top of the data of a REGION_READ/WRITE for the header and small replies. */
export const MESSAGE_SLACK = HEADER_SIZE + REGION_ACCESS_SIZE + MAX_REGION_INFO_SIZE;

/** Largest whole message (header included) for a given data transfer limit. */
export function maxMessage(maxDataXfer: number): number {
  return maxDataXfer + MESSAGE_SLACK;
}

/** Upper bound on regions a device may report (a sanity limit on discovery). */
export const MAX_REGIONS = 256;

/** vfio_device_info flags. */
export const DEVICE_FLAGS_RESET = 1;
export const DEVICE_FLAGS_PCI = 2;

/** vfio_region_info flags. */
export const REGION_FLAG_READ = 0x1;
export const REGION_FLAG_WRITE = 0x2;
export const REGION_FLAG_MMAP = 0x4;
export const REGION_FLAG_CAPS = 0x8;

/** Region capability ids. */
export const CAP_SPARSE_MMAP = 1;
export const CAP_TYPE = 2;

/** VFIO_REGION_TYPE_MIGRATION / VFIO_REGION_SUBTYPE_MIGRATION (v1). */
export const REGION_TYPE_MIGRATION = 3;
export const REGION_SUBTYPE_MIGRATION = 1;
/** VFIO_REGION_TYPE_PCI_VENDOR_TYPE: vendor-specific region types have this bit. */
export const REGION_TYPE_PCI_VENDOR = 0x8000_0000;

/** Fixed vfio-pci region indices. */
export const PCI_CONFIG_REGION_INDEX = 7;
export const PCI_CONFIG_SIZE = 256;
/** VFIO_PCI_NUM_REGIONS: indices 0-8; device-specific regions start here. */
export const PCI_NUM_FIXED_REGIONS = 9;
/** Where libvfio-user puts the migration region. */
export const DEFAULT_MIGRATION_REGION_INDEX = 9;
/** VFU_DEV_NUM_IRQS: INTx, MSI, MSI-X, ERR, REQ. */
export const PCI_NUM_IRQS = 5;

/**
 * Our state-digest region (served when the VendorRegion has `digest()`): a
 * vendor-specific region (VFIO_REGION_TYPE_PCI_VENDOR_TYPE | vendor 0xffff, an
 * id no real PCI vendor holds), subtype 1, 8 read-only bytes = the device's
 * state digest as a little-endian u64. Clients find it by its type capability.
 */
export const DIGEST_REGION_TYPE = (REGION_TYPE_PCI_VENDOR | 0xffff) >>> 0;
export const DIGEST_REGION_SUBTYPE = 1;
export const DIGEST_REGION_SIZE = 8;
