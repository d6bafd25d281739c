// crc32c kernel — being written.
