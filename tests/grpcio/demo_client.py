#!/usr/bin/env python3
"""A real third-party client of the l5d-demo gRPC backend (l5d.demo.Greeter).

Uses only grpcio: the two messages of demo/proto/l5d/demo/greeter.proto are
so small that they are encoded and decoded by hand below, so no generated
stubs (and no grpcio-tools) are needed.

  unary NAME              one SayHello call; prints the reply
  chat NAME1 NAME2 ...    one Chat stream; sends each request only after the
                          reply to the previous one arrived (which proves the
                          server answers as requests arrive), printing each
                          reply as it comes

Each reply is one JSON line on stdout, flushed at once:

  {"message": "hello alice from world-v1", "served_by": "world-v1"}

On a gRPC error it prints {"error": {"code": "UNAVAILABLE", "details": ...}}
and exits with the status code's number (14 for UNAVAILABLE).

  pip install -r tests/grpcio/requirements.txt
  python3 tests/grpcio/demo_client.py --target 127.0.0.1:4140 \\
      --authority world unary alice
"""

import argparse
import json
import queue
import sys

SAY_HELLO = "/l5d.demo.Greeter/SayHello"
CHAT = "/l5d.demo.Greeter/Chat"


# --- protobuf wire format, just enough for HelloRequest and HelloReply ---
#
# A message is a sequence of fields, each a varint key (field_number << 3 |
# wire_type) and a value. Strings are wire type 2: a varint byte length, then
# the UTF-8 bytes. Varints are 7 bits per byte, low bits first, with the high
# bit set on every byte but the last.

def encode_varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def decode_varint(buf, pos):
    n = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n, pos
        shift += 7


def encode_hello_request(name):
    """HelloRequest { string name = 1; }: key 0x0A is field 1, wire type 2."""
    data = name.encode("utf-8")
    return b"\x0a" + encode_varint(len(data)) + data


def decode_hello_reply(buf):
    """HelloReply { string message = 1; string served_by = 2; }."""
    fields = {1: "message", 2: "served_by"}
    out = {"message": "", "served_by": ""}  # proto3 omits empty strings
    pos = 0
    while pos < len(buf):
        key, pos = decode_varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 2:  # length-delimited
            length, pos = decode_varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
            if number in fields:
                out[fields[number]] = value.decode("utf-8")
        elif wire_type == 0:  # varint: skip (unknown field)
            _, pos = decode_varint(buf, pos)
        elif wire_type in (1, 5):  # fixed 64 / 32 bits: skip (unknown field)
            pos += 8 if wire_type == 1 else 4
        else:
            raise ValueError(f"unsupported wire type {wire_type} in HelloReply")
    return out


# --- the client ---

def emit(obj):
    print(json.dumps(obj), flush=True)


def unary(channel, name, timeout):
    call = channel.unary_unary(SAY_HELLO, request_serializer=encode_hello_request,
                               response_deserializer=decode_hello_reply)
    emit(call(name, timeout=timeout))


def chat(channel, names, timeout):
    call = channel.stream_stream(CHAT, request_serializer=encode_hello_request,
                                 response_deserializer=decode_hello_reply)
    # The request iterator runs on grpcio's thread; it waits for a token
    # per reply, so request n+1 is sent only after reply n was read.
    replied = queue.Queue()

    def requests():
        for i, name in enumerate(names):
            if i > 0 and replied.get(timeout=timeout) is None:
                return
            yield name

    got = 0
    for reply in call(requests(), timeout=timeout):
        emit(reply)
        got += 1
        replied.put(True)
    replied.put(None)  # let the iterator finish if the stream ended early
    if got != len(names):
        sys.exit(f"chat: {got} replies to {len(names)} requests")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, help="HOST:PORT of the backend or proxy")
    parser.add_argument("--authority", help="the :authority to send (default: the target)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per call")
    sub = parser.add_subparsers(dest="rpc", required=True)
    sub.add_parser("unary", help="one SayHello").add_argument("name")
    sub.add_parser("chat", help="one Chat stream").add_argument("names", nargs="+")
    args = parser.parse_args()

    import grpc
    options = [("grpc.default_authority", args.authority)] if args.authority else []
    with grpc.insecure_channel(args.target, options=options) as channel:
        try:
            if args.rpc == "unary":
                unary(channel, args.name, args.timeout)
            else:
                chat(channel, args.names, args.timeout)
        except grpc.RpcError as e:
            emit({"error": {"code": e.code().name, "details": e.details()}})
            sys.exit(e.code().value[0])


if __name__ == "__main__":
    main()
