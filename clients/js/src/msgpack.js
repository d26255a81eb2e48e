// The MessagePack encoding (`hubbub.msgpack.v1`), a separate entry point so
// that the browser build of the client stays small without it:
//   import { msgpack } from 'hubbub-client/msgpack';
//   new HubClient(url, { codec: msgpack });
// Covers what JSON can say (plus binary, decoded to Uint8Array). Integers
// beyond 2^53 decode as Number (precision lost) as in JSON.

const te = new TextEncoder();
const td = new TextDecoder();

function encode(value) {
  let buf = new Uint8Array(256);
  let view = new DataView(buf.buffer);
  let n = 0;
  const room = (k) => {
    if (n + k <= buf.length) return;
    const b = new Uint8Array(Math.max(buf.length * 2, n + k));
    b.set(buf);
    buf = b;
    view = new DataView(buf.buffer);
  };
  const u8 = (v) => (room(1), (buf[n++] = v));
  const head = (small, max, base, codes, len) => {
    if (len < max) return u8(base + len);
    if (small != null && len < 256) return u8(small), u8(len);
    room(5);
    if (len < 65536) (buf[n++] = codes[0]), view.setUint16(n, len), (n += 2);
    else (buf[n++] = codes[1]), view.setUint32(n, len), (n += 4);
  };
  const put = (v) => {
    if (v == null) return u8(0xc0);
    if (v === false) return u8(0xc2);
    if (v === true) return u8(0xc3);
    if (typeof v == 'number') {
      room(9);
      if (Number.isInteger(v) && Math.abs(v) <= Number.MAX_SAFE_INTEGER) {
        if (v >= 0 && v < 128) return (buf[n++] = v);
        if (v < 0 && v >= -32) return (buf[n++] = v & 0xff);
        if (v >= 0 && v < 2 ** 32) return (buf[n++] = 0xce), view.setUint32(n, v), (n += 4);
        if (v < 0 && v >= -(2 ** 31)) return (buf[n++] = 0xd2), view.setInt32(n, v), (n += 4);
        buf[n++] = v < 0 ? 0xd3 : 0xcf;
        view.setBigUint64(n, BigInt.asUintN(64, BigInt(v)));
        return (n += 8);
      }
      buf[n++] = 0xcb;
      view.setFloat64(n, v);
      return (n += 8);
    }
    if (typeof v == 'string') {
      const b = te.encode(v);
      head(0xd9, 32, 0xa0, [0xda, 0xdb], b.length);
      room(b.length);
      buf.set(b, n);
      return (n += b.length);
    }
    if (v instanceof Uint8Array) {
      head(0xc4, 0, 0, [0xc5, 0xc6], v.length);
      room(v.length);
      buf.set(v, n);
      return (n += v.length);
    }
    if (Array.isArray(v)) {
      head(null, 16, 0x90, [0xdc, 0xdd], v.length);
      return v.forEach((x) => put(x === undefined ? null : x));
    }
    if (typeof v.toJSON == 'function') return put(v.toJSON());
    const keys = Object.keys(v).filter((k) => v[k] !== undefined);
    head(null, 16, 0x80, [0xde, 0xdf], keys.length);
    for (const k of keys) put(k), put(v[k]);
  };
  put(value);
  return buf.subarray(0, n);
}

function decode(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let n = 0;
  const str = (len) => td.decode(bytes.subarray(n, (n += len)));
  const bin = (len) => bytes.slice(n, (n += len));
  const arr = (len) => Array.from({ length: len }, get);
  const map = (len) => {
    const o = {};
    for (let i = 0; i < len; i++) {
      const k = get();
      o[k] = get();
    }
    return o;
  };
  const u = (size) => {
    const v = size == 1 ? view.getUint8(n) : size == 2 ? view.getUint16(n) : view.getUint32(n);
    n += size;
    return v;
  };
  const get = () => {
    const t = view.getUint8(n++);
    if (t < 0x80) return t;
    if (t < 0x90) return map(t & 15);
    if (t < 0xa0) return arr(t & 15);
    if (t < 0xc0) return str(t & 31);
    if (t >= 0xe0) return t - 256;
    let v;
    switch (t) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return bin(u(1));
      case 0xc5: return bin(u(2));
      case 0xc6: return bin(u(4));
      case 0xca: v = view.getFloat32(n); n += 4; return v;
      case 0xcb: v = view.getFloat64(n); n += 8; return v;
      case 0xcc: return u(1);
      case 0xcd: return u(2);
      case 0xce: return u(4);
      case 0xcf: v = Number(view.getBigUint64(n)); n += 8; return v;
      case 0xd0: v = view.getInt8(n); n += 1; return v;
      case 0xd1: v = view.getInt16(n); n += 2; return v;
      case 0xd2: v = view.getInt32(n); n += 4; return v;
      case 0xd3: v = Number(view.getBigInt64(n)); n += 8; return v;
      case 0xd9: return str(u(1));
      case 0xda: return str(u(2));
      case 0xdb: return str(u(4));
      case 0xdc: return arr(u(2));
      case 0xdd: return arr(u(4));
      case 0xde: return map(u(2));
      case 0xdf: return map(u(4));
    }
    throw new Error(`msgpack: unsupported type 0x${t.toString(16)}`);
  };
  const v = get();
  if (n != bytes.length) throw new Error('msgpack: trailing bytes');
  return v;
}

/** The MessagePack codec for `HubClient`'s `codec` option. */
export const msgpack = {
  protocol: 'hubbub.msgpack.v1',
  encode,
  decode: (d) => decode(typeof d == 'string' ? te.encode(d) : d instanceof Uint8Array ? d : new Uint8Array(d)),
};
