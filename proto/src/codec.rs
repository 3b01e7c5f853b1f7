//! The codec of the generated clients and servers: tonic-prost's protobuf
//! encoding unchanged, with a smaller first encode buffer.
//!
//! tonic gives every call an encode buffer of `BufferSettings::buffer_size`
//! (8 KiB by default) and keeps it for as long as the call's body lives: on
//! a server stream, as long as the stream is open. namerd holds one stream
//! per name and per bound id of every proxy, each sending a message of a
//! few dozen bytes now and then, so the default cost about 8 KiB per open
//! stream (80 MiB for 10,000). [`MeshCodec`] starts the buffer at
//! [`ENCODE_BUFFER_BYTES`]; a larger message grows it as tonic always does
//! (`BytesMut` doubles), so only the memory changes, never the bytes sent.
//! Decoding keeps tonic's defaults.

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstDecoder, ProstEncoder};

/// The first size of a call's encode buffer.
pub const ENCODE_BUFFER_BYTES: usize = 256;

/// tonic's own threshold (32 KiB) for handing encoded messages to HTTP/2.
const YIELD_THRESHOLD: usize = 32 * 1024;

/// `tonic_prost::ProstCodec` with an [`ENCODE_BUFFER_BYTES`] encode buffer.
#[derive(Debug, Clone)]
pub struct MeshCodec<T, U> {
    _pd: PhantomData<(T, U)>,
}

impl<T, U> Default for MeshCodec<T, U> {
    fn default() -> Self {
        MeshCodec { _pd: PhantomData }
    }
}

impl<T, U> Codec for MeshCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::new(ENCODE_BUFFER_BYTES, YIELD_THRESHOLD))
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(BufferSettings::default())
    }
}
