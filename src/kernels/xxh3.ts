// xxh3 binding — being written.
export {};
