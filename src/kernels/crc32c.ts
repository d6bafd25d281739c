// crc32c binding — being written.
export {};
