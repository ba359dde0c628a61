"""The local harness: stand-ins for AWS and Kustomer, and the Lambda runtime, on loopback.

Used by the tests, `make demo`, `make serve` and the benchmarks alike: the local Secrets
Manager (moto, corrected to AWS's rotation behaviour) behind a proxy that checks each
caller's role and injects faults, a fake Kustomer, a stand-in Secrets extension, the
Lambda Runtime Interface Emulator with a proxy on its Runtime API, and a CPU cap. The
servers share one loopback base (`loopback.LoopbackServer`).
"""
