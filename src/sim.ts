// The "vfio-migstream/sim" entry: simulations for tests, demos and vendor
// experiments — simulated vendor devices (SimDevice behind a VFIO v1 region,
// MigrationSimDevice behind the v2 state machine), what puts them in front of
// a user in the same process (InProcessRegion, InProcessMigration), and a
// link simulated at a fixed rate. Serve a VendorRegion over a socket with
// VfioUserServer (main entry).
export { SimDevice, type SimDeviceOptions, type Violation, type StateWrite } from "./device/simulated.js";
export { VendorErrno, type VendorRegion } from "./device/vendor.js";
export { InProcessRegion, type InProcessOptions } from "./transport/in-process.js";
export { MigrationSimDevice, type MigrationSimOptions, type MigrationFault } from "./device/migration-sim.js";
export { type MigrationVendor, walk } from "./device/migration-vendor.js";
export { InProcessMigration } from "./transport/in-process-v2.js";
export { throttle, type ThrottledSink, type ThrottleOptions } from "./migrate/throttle.js";
