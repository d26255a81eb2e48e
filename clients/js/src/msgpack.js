export const msgpack = null;
