// The "vfio-migstream/sim" entry: simulations for tests, demos and vendor
// experiments — a simulated vendor device (SimDevice, a VendorRegion), a
// RegionIO in front of any VendorRegion in the same process, and a link
// simulated at a fixed rate. Serve a VendorRegion over a socket with
// VfioUserServer (main entry).
export { SimDevice, type SimDeviceOptions, type Violation, type StateWrite } from "./device/simulated.js";
export { VendorErrno, type VendorRegion } from "./device/vendor.js";
export { InProcessRegion, type InProcessOptions } from "./transport/in-process.js";
export { throttle, type ThrottledSink, type ThrottleOptions } from "./migrate/throttle.js";
