"""A gRPC client the project did not write (Python's grpcio), for the
deadline tests: calls one unary method COUNT times with a deadline of
TIMEOUT_MS and prints, per call, the status code and the
x-cancel-reason trailer ("-" when absent).

usage: grpc_client.py ADDRESS PATH COUNT TIMEOUT_MS
"""

import sys

import grpc


def main():
    address, path, count, timeout_ms = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with grpc.insecure_channel(address) as channel:
        # No generated code: the method's messages are raw UTF-8 bytes.
        call = channel.unary_unary(
            path,
            request_serializer=lambda text: text.encode(),
            response_deserializer=lambda data: data.decode(),
        )
        for _ in range(count):
            try:
                call("ping", timeout=timeout_ms / 1000)
                print("OK -", flush=True)
            except grpc.RpcError as error:
                trailers = dict(error.trailing_metadata() or ())
                reason = trailers.get("x-cancel-reason", "-")
                print(f"{error.code().name} {reason}", flush=True)


if __name__ == "__main__":
    main()
