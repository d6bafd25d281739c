// The "vfio-migstream/sim" entry: simulations for tests, demos and vendor
// experiments — simulated vendor devices (SimDevice behind a VFIO v1 region,
// MigrationSimDevice behind the v2 state machine), what puts them in front of
// a user in the same process (InProcessRegion, InProcessMigration), and a
// link simulated at a fixed rate. Serve a VendorRegion over a socket with
// VfioUserServer (main entry).

export { type MigrationFault, MigrationSimDevice, type MigrationSimOptions } from "./device/migration-sim.js";
export { type MigrationVendor, walk } from "./device/migration-vendor.js";
export { SimDevice, type SimDeviceOptions, type StateWrite, type Violation } from "./device/simulated.js";
export { VendorErrno, type VendorRegion } from "./device/vendor.js";
export { type ThrottledSink, type ThrottleOptions, throttle } from "./migrate/throttle.js";
export { type InProcessOptions, InProcessRegion } from "./transport/in-process.js";
export { InProcessMigration } from "./transport/in-process-v2.js";
