// chunk binding — being written.
export {};
