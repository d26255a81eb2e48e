import type { Codec } from './index.js';
/** The MessagePack encoding (`hubbub.msgpack.v1`) for `HubClient`'s `codec` option. */
export declare const msgpack: Codec;
