"""Benchmark: the production topology (deploy/'s files, as tests/deploy/test_topology.py
starts them) against one app server reached directly.

PostgreSQL behind PgBouncer (transaction pooling), two gunicorn app servers (each as its
systemd unit starts it: 3 workers x 4 threads) and nginx with TLS in front. The same
database is seeded as bench/pledges.py seeds it (one hot project, buyers with saved
cards). Then, for ``--seconds`` each, ``--clients`` keep-alive clients:

- pledge (1 to 5 tokens) through nginx over HTTPS, then directly to app server A over
  HTTP (nginx and the second server idle);
- list projects (``GET /api/v1/projects``) the same two ways, for its p95.

It prints each figure and the ratio of nginx-with-two to one-directly. On one machine the
two servers share its cores with nginx, PgBouncer, PostgreSQL and the clients, so the
ratio says what the proxy and TLS cost here, not what a second machine would add.

    .venv/bin/python -m bench.topology [--seconds 10] [--clients 16]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import threading
import time

from bench.pledges import seed
from tests.support.postgres import durability
from tests.support.topology import Topology


def load(connect, path_of, body_of, clients: int, seconds: float, buyers) -> tuple[float, list]:
    """Requests from ``clients`` keep-alive connections for ``seconds``: (per second,
    sorted latencies). ``body_of(n)`` None makes them GETs."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    stop = time.monotonic() + seconds
    barrier = threading.Barrier(clients)

    def run(n: int) -> None:
        token, method = buyers[n % len(buyers)]
        conn = connect()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        body = body_of(n, method)
        barrier.wait()
        while time.monotonic() < stop:
            started = time.perf_counter()
            conn.request("POST" if body else "GET", path_of(n), body, headers)
            response = conn.getresponse()
            payload = response.read()
            latencies[n].append(time.perf_counter() - started)
            if response.status not in (200, 201):
                errors[n] += 1
                if errors[n] == 1:
                    print(f"  error: {response.status} {payload[:300]!r}")

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    if sum(errors):
        raise SystemExit(f"{sum(errors)} requests failed")
    flat = sorted(x for each in latencies for x in each)
    return len(flat) / elapsed, flat


def p95(latencies: list[float]) -> float:
    return latencies[int(len(latencies) * 0.95) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    topology = Topology(durable=True).start()
    try:
        project_id, buyers = seed(topology.direct_url)
        tls = topology.tls()

        def through_nginx() -> http.client.HTTPConnection:
            return http.client.HTTPSConnection(
                "localhost", topology.ports["https"], context=tls, timeout=30
            )

        def directly() -> http.client.HTTPConnection:
            return http.client.HTTPConnection("127.0.0.1", topology.ports["app_a"], timeout=30)

        def pledge(n: int, method: str) -> str:
            return json.dumps({"tokens": 1 + n % 5, "payment_method": method})

        def listing(_n: int, _method: str) -> None:
            return None

        pledges_path = f"/api/v1/projects/{project_id}/pledges"
        print(
            f"{os.cpu_count()} cores; nginx (TLS) -> 2 app servers x 3 workers x 4 threads -> "
            f"PgBouncer (transaction pooling) -> PostgreSQL; {args.clients} clients, "
            f"{args.seconds} s per run"
        )
        print(durability(topology.direct_url))
        figures = {}
        for name, connect in (("nginx, 2 servers", through_nginx), ("1 server directly", directly)):
            load(connect, lambda _n: pledges_path, pledge, args.clients, 2, buyers)  # warm up
            rate, latencies = load(
                connect, lambda _n: pledges_path, pledge, args.clients, args.seconds, buyers
            )
            _, listed = load(
                connect,
                lambda n: f"/api/v1/projects?per_page=20&page={1 + n % 2}",
                listing,
                args.clients,
                args.seconds,
                buyers,
            )
            figures[name] = (rate, p95(latencies), p95(listed), statistics.median(listed) * 1000)
        print(f"{'':<18} {'pledges/s':>10} {'pledge p95 ms':>14} {'listing p95 ms':>15}")
        for name, (rate, pledge_p95, listing_p95, _median) in figures.items():
            print(f"{name:<18} {rate:>10.0f} {pledge_p95:>14.1f} {listing_p95:>15.1f}")
        proxied, direct = figures["nginx, 2 servers"], figures["1 server directly"]
        print(
            f"ratio (nginx with two / one directly): pledges/s {proxied[0] / direct[0]:.2f}, "
            f"listing p95 {proxied[2] / direct[2]:.2f}"
        )
    finally:
        topology.stop()


if __name__ == "__main__":
    main()
