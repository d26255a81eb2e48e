//! The decoder's rules, one test per rule, plus chunking equivalence.

mod common;

use bytes::Bytes;
use common::*;
use hubbub_ws::{
    client_frame, server_frame, CloseFrame, Decoder, DecoderConfig, Message, OpCode, WsError,
};

fn is_protocol<T: std::fmt::Debug>(r: Result<T, WsError>) -> bool {
    matches!(r, Err(WsError::Protocol(_)))
}

#[test]
fn single_frames() {
    let mut dec = server(1 << 20);
    let f = client_frame(OpCode::Text, "héllo".as_bytes(), MASK);
    assert_eq!(
        dec.decode(&f),
        Ok((f.len(), Some(Message::Text(Bytes::from("héllo")))))
    );
    let f = client_frame(OpCode::Binary, &[0, 1, 2, 255], MASK);
    assert_eq!(
        dec.decode(&f),
        Ok((
            f.len(),
            Some(Message::Binary(Bytes::from_static(&[0, 1, 2, 255])))
        ))
    );
    let f = client_frame(OpCode::Ping, b"p", MASK);
    assert_eq!(
        dec.decode(&f),
        Ok((f.len(), Some(Message::Ping(Bytes::from("p")))))
    );
    let f = client_frame(OpCode::Pong, b"", MASK);
    assert_eq!(
        dec.decode(&f),
        Ok((f.len(), Some(Message::Pong(Bytes::new()))))
    );
    let f = client_frame(OpCode::Text, b"", MASK);
    assert_eq!(
        dec.decode(&f),
        Ok((f.len(), Some(Message::Text(Bytes::new()))))
    );
    assert!(!dec.in_message());
}

#[test]
fn only_the_first_frame_is_consumed() {
    let mut dec = server(100);
    let mut two = client_frame(OpCode::Text, b"a", MASK);
    let first = two.len();
    two.extend(client_frame(OpCode::Text, b"b", MASK));
    assert_eq!(
        dec.decode(&two),
        Ok((first, Some(Message::Text(Bytes::from("a")))))
    );
    assert_eq!(
        dec.decode(&two[first..]),
        Ok((first, Some(Message::Text(Bytes::from("b")))))
    );
}

#[test]
fn length_forms() {
    for len in [0usize, 125, 126, 65535, 65536, 70000] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        let mut dec = server(1 << 20);
        let f = client_frame(OpCode::Binary, &payload, MASK);
        assert_eq!(
            dec.decode(&f),
            Ok((f.len(), Some(Message::Binary(Bytes::from(payload.clone()))))),
            "len {len}"
        );
        assert_eq!(dec.decode(&f[..f.len() - 1]), Ok((0, None)));
    }
}

#[test]
fn rsv_bits_without_extension_are_protocol_errors() {
    for bits in [0x40u8, 0x20, 0x10, 0x70] {
        let mut dec = server(100);
        assert!(
            is_protocol(dec.decode(&raw(0x81 | bits, b"x"))),
            "{bits:#x}"
        );
        // Detected from the first two bytes alone.
        assert!(is_protocol(dec.decode(&raw(0x81 | bits, b"x")[..2])));
    }
}

#[test]
fn rsv1_passes_through_when_allowed() {
    let mut dec = Decoder::new(DecoderConfig {
        max_message_size: 100,
        require_mask: true,
        allow_rsv1: true,
    });
    // Compressed text is not UTF-8 validated: the caller inflates first.
    let f = raw(0xC1, b"\xff\x00");
    assert_eq!(
        dec.decode(&f),
        Ok((
            f.len(),
            Some(Message::Text(Bytes::from_static(b"\xff\x00")))
        ))
    );
    assert!(dec.last_rsv1());
    // Fragmented: the flag is on the first frame only.
    let a = raw(0x42, b"ab");
    let b = raw(0x80, b"cd");
    assert_eq!(dec.decode(&a), Ok((a.len(), None)));
    assert_eq!(
        dec.decode(&b),
        Ok((b.len(), Some(Message::Binary(Bytes::from("abcd")))))
    );
    assert!(dec.last_rsv1());
    let f = client_frame(OpCode::Text, b"plain", MASK);
    assert!(dec.decode(&f).is_ok());
    assert!(!dec.last_rsv1());
    // RSV1 on a continuation or control frame is still an error.
    assert_eq!(dec.decode(&raw(0x01, b"a")).map(|r| r.1), Ok(None));
    assert!(is_protocol(dec.decode(&raw(0xC0, b"b"))));
    assert!(is_protocol(dec.decode(&raw(0xC9, b""))));
    // RSV2/RSV3 are never allowed.
    assert!(is_protocol(dec.decode(&raw(0xA1, b""))));
}

#[test]
fn reserved_opcodes() {
    for op in (3..=7u8).chain(0xB..=0xF) {
        let mut dec = server(100);
        assert!(is_protocol(dec.decode(&raw(0x80 | op, b""))), "{op}");
        assert!(is_protocol(dec.decode(&raw(op, b"abc"))), "{op}");
    }
}

#[test]
fn control_frames_must_be_final_and_small() {
    for op in [OpCode::Close, OpCode::Ping, OpCode::Pong] {
        let mut dec = server(1000);
        assert!(is_protocol(dec.decode(&frame(op, false, b""))), "{op:?}");
        let big = vec![b'a'; 126];
        let f = frame(op, true, &big);
        assert!(is_protocol(dec.decode(&f)), "{op:?}");
        assert!(is_protocol(dec.decode(&f[..2])), "{op:?} early");
    }
    let mut dec = server(10);
    // 125 bytes is fine, even above max_message_size.
    let f = frame(OpCode::Ping, true, &[7u8; 125]);
    assert_eq!(
        dec.decode(&f),
        Ok((f.len(), Some(Message::Ping(Bytes::from(vec![7u8; 125])))))
    );
}

#[test]
fn continuation_without_a_message() {
    let mut dec = server(100);
    assert!(is_protocol(dec.decode(&frame(
        OpCode::Continuation,
        true,
        b"a"
    ))));
    assert!(is_protocol(dec.decode(&frame(
        OpCode::Continuation,
        false,
        b"a"
    ))));
}

#[test]
fn new_message_inside_a_fragmented_one() {
    for op in [OpCode::Text, OpCode::Binary] {
        let mut dec = server(100);
        let a = frame(OpCode::Text, false, b"a");
        assert_eq!(dec.decode(&a), Ok((a.len(), None)));
        assert!(dec.in_message());
        assert!(is_protocol(dec.decode(&frame(op, true, b"b"))));
        assert!(!dec.in_message());
    }
}

#[test]
fn masking_rules() {
    let mut dec = server(100);
    let unmasked = server_frame(OpCode::Text, b"hi");
    assert!(is_protocol(dec.decode(&unmasked)));
    assert!(is_protocol(dec.decode(&unmasked[..2])));
    let mut client = Decoder::new(DecoderConfig {
        max_message_size: 100,
        require_mask: false,
        allow_rsv1: false,
    });
    assert_eq!(
        client.decode(&unmasked),
        Ok((4, Some(Message::Text(Bytes::from("hi")))))
    );
    let masked = client_frame(OpCode::Text, b"hi", MASK);
    assert_eq!(
        client.decode(&masked),
        Ok((8, Some(Message::Text(Bytes::from("hi")))))
    );
}

#[test]
fn sixty_four_bit_length_with_top_bit() {
    let mut dec = server(usize::MAX);
    let f = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4];
    assert!(is_protocol(dec.decode(&f)));
    assert!(is_protocol(dec.decode(&f[..10])));
    assert_eq!(dec.decode(&f[..9]), Ok((0, None)));
}

/// RFC 6455 section 5.2: "the minimal number of bytes MUST be used to
/// encode the length". A 16-bit length under 126 and a 64-bit length under
/// 65,536 are protocol errors (close 1002), found from the header alone.
#[test]
fn non_minimal_lengths_are_protocol_errors() {
    let mut dec = server(1 << 20);
    // "hi" (2 bytes) announced with the 16-bit form.
    let mut f = vec![0x81, 0x80 | 126, 0, 2];
    f.extend_from_slice(&MASK);
    f.extend_from_slice(b"hi");
    assert_eq!(
        dec.decode(&f),
        Err(WsError::Protocol("non-minimal 16-bit payload length"))
    );
    assert_eq!(
        dec.decode(&f[..4]),
        Err(WsError::Protocol("non-minimal 16-bit payload length"))
    );
    assert_eq!(dec.needed(&f[..4]), None);
    // 125 in the 16-bit form: still not minimal; 126 is the smallest.
    let mut dec = server(1 << 20);
    assert!(is_protocol(dec.decode(&[0x82, 0x80 | 126, 0, 125])));
    let ok = client_frame(OpCode::Binary, &[7u8; 126], MASK);
    assert_eq!(&ok[1..4], &[0x80 | 126, 0, 126]);
    assert!(matches!(dec.decode(&ok), Ok((_, Some(Message::Binary(_))))));
    // The 64-bit form for lengths that fit in 16 bits (0, 2, 65,535).
    for len in [0u64, 2, 65_535] {
        let mut dec = server(1 << 20);
        let mut h = vec![0x82, 0x80 | 127];
        h.extend_from_slice(&len.to_be_bytes());
        assert_eq!(
            dec.decode(&h),
            Err(WsError::Protocol("non-minimal 64-bit payload length")),
            "{len}"
        );
        assert_eq!(dec.needed(&h), None);
    }
    // 65,536 is the smallest 64-bit length.
    let mut dec = server(1 << 20);
    let ok = client_frame(OpCode::Binary, &[7u8; 65_536], MASK);
    assert_eq!(ok[1], 0x80 | 127);
    assert!(matches!(dec.decode(&ok), Ok((_, Some(Message::Binary(_))))));
}

#[test]
fn too_big_is_detected_from_the_header() {
    let mut dec = server(1000);
    // Header only: a 1001-byte frame.
    let f = client_frame(OpCode::Binary, &[0u8; 1001], MASK);
    assert_eq!(dec.decode(&f[..4]), Err(WsError::TooBig));
    assert_eq!(dec.needed(&f[..4]), None);
    // A huge 64-bit length, header only.
    let huge = [0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
    assert_eq!(dec.decode(&huge), Err(WsError::TooBig));
    // Exactly the limit is fine.
    let f = client_frame(OpCode::Binary, &[0u8; 1000], MASK);
    assert!(matches!(dec.decode(&f), Ok((_, Some(Message::Binary(_))))));
}

#[test]
fn too_big_counts_accumulated_fragments() {
    let mut dec = server(10);
    let a = frame(OpCode::Text, false, b"123456");
    assert_eq!(dec.decode(&a), Ok((a.len(), None)));
    let b = frame(OpCode::Continuation, false, b"7890");
    assert_eq!(dec.decode(&b), Ok((b.len(), None)));
    let c = frame(OpCode::Continuation, true, b"x");
    assert_eq!(dec.decode(&c[..2]), Err(WsError::TooBig));
    assert!(!dec.in_message());
    // A fresh message that fits exactly.
    let mut dec = server(10);
    let a = frame(OpCode::Binary, false, b"12345");
    let b = frame(OpCode::Continuation, true, b"67890");
    assert_eq!(dec.decode(&a), Ok((a.len(), None)));
    assert_eq!(
        dec.decode(&b),
        Ok((b.len(), Some(Message::Binary(Bytes::from("1234567890")))))
    );
}

#[test]
fn invalid_utf8_in_a_single_frame() {
    for bad in [
        &b"\xff"[..],
        b"a\xc0\xafb",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"abc\xe2\x82",
    ] {
        let mut dec = server(100);
        assert_eq!(
            dec.decode(&frame(OpCode::Text, true, bad)),
            Err(WsError::InvalidUtf8),
            "{bad:?}"
        );
    }
    // Binary is not checked.
    let mut dec = server(100);
    let f = frame(OpCode::Binary, true, b"\xff");
    assert!(dec.decode(&f).is_ok());
}

#[test]
fn fragmented_text_split_inside_a_character() {
    let text = "a€𝄞é".as_bytes();
    for split1 in 0..=text.len() {
        for split2 in split1..=text.len() {
            let mut dec = server(100);
            let mut stream = frame(OpCode::Text, false, &text[..split1]);
            stream.extend(frame(OpCode::Continuation, false, &text[split1..split2]));
            stream.extend(frame(OpCode::Continuation, true, &text[split2..]));
            let (msgs, end) = all_at_once(&mut dec, &stream);
            assert_eq!(msgs, [Message::Text(Bytes::from("a€𝄞é"))]);
            assert_eq!(end, Ok(0));
        }
    }
}

#[test]
fn fragmented_invalid_utf8_fails_at_its_fragment() {
    let mut dec = server(100);
    let a = frame(OpCode::Text, false, b"ok\xe2\x82");
    assert_eq!(dec.decode(&a), Ok((a.len(), None)));
    // The carried prefix cannot be completed by 'x'.
    let b = frame(OpCode::Continuation, false, b"x");
    assert_eq!(dec.decode(&b), Err(WsError::InvalidUtf8));

    let mut dec = server(100);
    let a = frame(OpCode::Text, false, b"fine");
    assert_eq!(dec.decode(&a), Ok((a.len(), None)));
    let b = frame(OpCode::Continuation, false, b"\xf4\x90");
    assert_eq!(dec.decode(&b), Err(WsError::InvalidUtf8));
}

#[test]
fn final_fragment_with_incomplete_character() {
    let mut dec = server(100);
    let a = frame(OpCode::Text, false, b"ab");
    let b = frame(OpCode::Continuation, true, b"c\xf0\x9d\x84");
    assert_eq!(dec.decode(&a), Ok((a.len(), None)));
    assert_eq!(dec.decode(&b), Err(WsError::InvalidUtf8));
}

#[test]
fn invalid_utf8_fails_before_the_frame_is_complete() {
    let mut payload = b"valid text ".to_vec();
    payload.extend_from_slice(b"\xc0\xaf");
    payload.extend(std::iter::repeat_n(b'z', 1000));
    let f = frame(OpCode::Text, true, &payload);
    let mut dec = server(10_000);
    // Header plus the valid part: nothing to report yet.
    assert_eq!(dec.decode(&f[..8 + 11]), Ok((0, None)));
    // The bad bytes have arrived: fail now, 1000 bytes early.
    assert_eq!(dec.decode(&f[..8 + 13]), Err(WsError::InvalidUtf8));
    // Same for a continuation frame.
    let mut dec = server(10_000);
    let a = frame(OpCode::Text, false, b"abc");
    assert_eq!(dec.decode(&a), Ok((a.len(), None)));
    let b = frame(OpCode::Continuation, true, &payload);
    assert_eq!(dec.decode(&b[..8 + 11]), Ok((0, None)));
    assert_eq!(dec.decode(&b[..8 + 13]), Err(WsError::InvalidUtf8));
}

#[test]
fn close_frames() {
    let close = |payload: &[u8]| server(100).decode(&frame(OpCode::Close, true, payload));
    assert_eq!(close(b""), Ok((6, Some(Message::Close(None)))));
    assert!(is_protocol(close(b"\x03")));
    for code in [
        0u16, 999, 1004, 1005, 1006, 1012, 1014, 1015, 1016, 2000, 2999, 5000, 65535,
    ] {
        assert!(is_protocol(close(&code.to_be_bytes())), "{code}");
    }
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4000, 4999,
    ] {
        assert_eq!(
            close(&code.to_be_bytes()),
            Ok((
                8,
                Some(Message::Close(Some(CloseFrame {
                    code,
                    reason: String::new()
                })))
            )),
            "{code}"
        );
    }
    assert_eq!(close(b"\x03\xe8ok\xff"), Err(WsError::InvalidUtf8));
    assert_eq!(
        close(&[b"\x03\xe8", "bye 👋".as_bytes()].concat()),
        Ok((
            6 + 10,
            Some(Message::Close(Some(CloseFrame {
                code: 1000,
                reason: "bye 👋".into()
            })))
        ))
    );
}

#[test]
fn control_frames_inside_a_fragmented_message() {
    let mut dec = server(100);
    let mut stream = frame(OpCode::Text, false, b"frag1 ");
    stream.extend(frame(OpCode::Ping, true, b"ping"));
    stream.extend(frame(OpCode::Continuation, false, b"frag2 "));
    stream.extend(frame(OpCode::Pong, true, b""));
    stream.extend(frame(OpCode::Continuation, true, b"frag3"));
    let (msgs, end) = all_at_once(&mut dec, &stream);
    assert_eq!(
        msgs,
        [
            Message::Ping(Bytes::from("ping")),
            Message::Pong(Bytes::new()),
            Message::Text(Bytes::from("frag1 frag2 frag3")),
        ]
    );
    assert_eq!(end, Ok(0));
    assert!(!dec.in_message());
}

#[test]
fn needed_reports_missing_bytes() {
    let dec = server(1 << 20);
    let f = client_frame(OpCode::Binary, &[1u8; 70000], MASK);
    assert_eq!(dec.needed(&f[..1]), None);
    assert_eq!(dec.needed(&f[..9]), None);
    assert_eq!(dec.needed(&f[..10]), Some(f.len() - 10));
    assert_eq!(dec.needed(&f[..14]), Some(70000));
    assert_eq!(dec.needed(&f), Some(0));
    let small = client_frame(OpCode::Text, b"abc", MASK);
    assert_eq!(dec.needed(&small[..2]), Some(small.len() - 2));
    assert_eq!(dec.needed(&[]), None);
    // A frame the decoder will reject.
    assert_eq!(dec.needed(&[0x83, 0x80]), None);
}

/// A stream that exercises every kind of frame, ending in a partial frame.
fn mixed_stream() -> Vec<u8> {
    let mut s = Vec::new();
    s.extend(frame(OpCode::Text, true, "plain ✓".as_bytes()));
    s.extend(frame(OpCode::Binary, true, &[9u8; 300]));
    s.extend(frame(OpCode::Text, false, &"𝄞".as_bytes()[..1]));
    s.extend(frame(OpCode::Ping, true, b"mid"));
    s.extend(frame(OpCode::Continuation, false, &"𝄞".as_bytes()[1..3]));
    s.extend(frame(OpCode::Continuation, true, &"𝄞".as_bytes()[3..]));
    s.extend(frame(OpCode::Binary, true, &vec![3u8; 70000]));
    s.extend(frame(OpCode::Close, true, b"\x03\xe8done"));
    s.extend(frame(OpCode::Text, true, b"partial")[..5].to_vec());
    s
}

#[test]
fn one_byte_at_a_time_equals_all_at_once() {
    let stream = mixed_stream();
    let whole = all_at_once(&mut server(1 << 20), &stream);
    assert_eq!(whole.0.len(), 6);
    assert_eq!(whole.1, Ok(5));
    assert_eq!(run_chunked(&mut server(1 << 20), &stream, &[1]), whole);
    for chunks in [&[2usize][..], &[3, 7, 1], &[126, 1, 64], &[1000, 13]] {
        assert_eq!(
            run_chunked(&mut server(1 << 20), &stream, chunks),
            whole,
            "{chunks:?}"
        );
    }
}

#[test]
fn chunking_does_not_change_errors() {
    let mut bad = mixed_stream();
    bad.truncate(bad.len() - 5);
    let mut tail = frame(OpCode::Text, false, b"ok");
    tail.extend(frame(
        OpCode::Continuation,
        true,
        b"\xe2\x82\xac\xe2\x28\xa1 and more",
    ));
    bad.extend(tail);
    let whole = all_at_once(&mut server(1 << 20), &bad);
    assert_eq!(whole.1, Err(WsError::InvalidUtf8));
    for chunks in [&[1usize][..], &[5, 3], &[4096]] {
        assert_eq!(
            run_chunked(&mut server(1 << 20), &bad, chunks),
            whole,
            "{chunks:?}"
        );
    }
}

/// Pseudo-random streams cut at pseudo-random points give the same results.
#[test]
fn random_chunking_equivalence() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..300 {
        let len = (next() % 400) as usize;
        let mut stream: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Mix in valid frames so the decoder gets past the first header.
        if next() % 2 == 0 {
            let mut valid = mixed_stream();
            valid.truncate(valid.len() - 5);
            valid.extend(stream);
            stream = valid;
        }
        let whole = all_at_once(&mut server(100_000), &stream);
        let chunks: Vec<usize> = (0..5).map(|_| (next() % 40) as usize + 1).collect();
        assert_eq!(run_chunked(&mut server(100_000), &stream, &chunks), whole);
    }
}

#[test]
fn errors_release_the_partial_message() {
    let mut dec = server(1 << 20);
    let a = frame(OpCode::Binary, false, &[0u8; 1000]);
    assert_eq!(dec.decode(&a), Ok((a.len(), None)));
    assert!(dec.in_message());
    assert!(dec.decode(&raw(0x83, b"")).is_err());
    assert!(!dec.in_message());
}
