// lz4 binding — being written.
export {};
