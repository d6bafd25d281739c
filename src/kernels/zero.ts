// zero binding — being written.
export {};
