// xxh64 binding — being written.
export {};
