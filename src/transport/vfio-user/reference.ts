// The vfio-user server variants: our default server, and "libvfio-user", which
// behaves as the reference server library's v1 sample servers do (reference
// notes vfio-user.md §5, vfio-migration-v1.md §7) wherever the two differ.
// Rules both variants share (the reference's strictness) live in server.ts;
// what only the reference does is decided here, once.
import { CMD, DEFAULT_MIGRATION_REGION_INDEX, HEADER_SIZE, MAX_VERSION_JSON, REGION_ACCESS_SIZE } from "./constants.js";

/**
 * "default": serves clients one after another, offers the state-digest region
 * and the vendor's sparse areas. "libvfio-user": as the reference server —
 * serves its one client and closes when it leaves (other connections wait
 * unread until then), exactly 10 regions (no digest region), no SPARSE_MMAP
 * cap (the reference offers sparse areas only with an fd, which we never
 * pass), its VERSION reply text, and while the device is STOP or
 * stop-and-copy it refuses every command except REGION_READ, REGION_WRITE and
 * DIRTY_PAGES.
 */
export type ServerVariant = "default" | "libvfio-user";
export const SERVER_VARIANTS: readonly ServerVariant[] = ["default", "libvfio-user"];

/** The reference's region count for a PCI device: BAR0-5, ROM, CONFIG, VGA, MIGRATION. */
export const REFERENCE_NUM_REGIONS = DEFAULT_MIGRATION_REGION_INDEX + 1;

/** The reference's VERSION reply JSON (its JSON library's spaced form; NUL added by the encoder). */
export function referenceVersionJson(maxDataXfer: number): string {
  return `{ "capabilities": { "max_msg_fds": 8, "max_data_xfer_size": ${maxDataXfer}, "migration": { "pgsize": 4096 } } }`;
}

/** Commands the reference executes while the device is STOP or stop-and-copy (all others: EINVAL). */
const WHILE_STOPPED: ReadonlySet<number> = new Set([CMD.REGION_READ, CMD.REGION_WRITE, CMD.DIRTY_PAGES]);

/**
 * Whether `cmd` is refused while the device is stopped (v1 device_state STOP
 * or stop-and-copy). Both variants refuse DEVICE_RESET (reference notes §5.6);
 * the reference refuses everything but region accesses and dirty logging.
 */
export function refusedWhileStopped(variant: ServerVariant, cmd: number): boolean {
  return variant === "libvfio-user" ? !WHILE_STOPPED.has(cmd) : cmd === CMD.DEVICE_RESET;
}

/**
 * Largest whole message a server accepts: a REGION_WRITE of `maxDataXfer`
 * bytes (the reference: 1 MiB + 16 + 16), and never less than the largest
 * VERSION we take.
 */
export function serverMaxMessage(maxDataXfer: number): number {
  return HEADER_SIZE + Math.max(REGION_ACCESS_SIZE + maxDataXfer, 4 + MAX_VERSION_JSON);
}
