#!/usr/bin/env python3
"""The benchmark suite: every scenario, every contender, one load generator, one run.

    bench/run.sh [seconds] [concurrency]      (builds in release mode, then runs this)

Scenarios, each with the anchor it is compared with, measured in the same run:
  1. HTTP/JSON -> Dubbo2 through the gateway; anchor: a direct Dubbo2 client (the limit).
  2. HTTP -> HTTP proxying: gateway, Envoy 1.40, nginx 1.22; the backend alone as ceiling.
  3. HTTP/JSON -> gRPC: gateway vs Envoy's grpc_json_transcoder (same descriptor set).
  4. gRPC -> gRPC proxying: gateway vs Envoy; the backend alone as ceiling.
  5. Memory: idle, and peak under 1,000 open connections: gateway, Envoy, nginx.
  6. xDS scale (10,000 clusters / 100,000 endpoints): bench/xds_scale.sh.
Contenders alternate (A B C, then C B A) and the two runs are averaged. Every proxy gets the
same number of worker threads (gateway `workers`, Envoy --concurrency, nginx
worker_processes). Load generator (wrk or h2load, one thread), proxy and backend share the
machine's cores; backends are fast Rust programs measured alone to show they are not the
bottleneck. Columns: req/s, p50 and p99 latency, CPU seconds the proxy used per 10,000
requests, its peak RSS. Results go to docs/benchmarks.md (between the suite markers) and
docs/bench-suite.svg.
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = os.path.join(ROOT, "target", "release")
ENVOY = os.path.join(ROOT, "peers", "python", ".venv", "bin", "envoy")
PY = os.path.join(ROOT, "peers", "python", ".venv", "bin", "python")
WORKERS = 2
TICK = os.sysconf("SC_CLK_TCK")

NUMBERS = [a for a in sys.argv[1:] if a.isdigit()]
SECS = int(NUMBERS[0]) if NUMBERS else 10
CONC = int(NUMBERS[1]) if len(NUMBERS) > 1 else 32
WORK = tempfile.mkdtemp(prefix="bench-suite-")
PROCS = []


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(name, cmd, ready=None, env=None):
    """Starts a process with its output in WORK/name.log; waits for `ready` (a port, or text
    in the log)."""
    out = open(os.path.join(WORK, name + ".log"), "w")
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                         cwd=ROOT, start_new_session=True)
    PROCS.append(p)
    deadline = time.time() + 60
    while time.time() < deadline:
        if p.poll() is not None:
            raise SystemExit(f"{name} exited: {open(out.name).read()[-2000:]}")
        if isinstance(ready, int):
            try:
                socket.create_connection(("127.0.0.1", ready), timeout=0.2).close()
                return p
            except OSError:
                pass
        elif isinstance(ready, str):
            if ready in open(out.name).read():
                return p
        else:
            return p
        time.sleep(0.05)
    raise SystemExit(f"{name} did not start: {open(out.name).read()[-2000:]}")


def stop(p):
    try:
        os.killpg(p.pid, 15)
    except ProcessLookupError:
        pass
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        p.wait()


def group_pids(p):
    """The process and its children (nginx's workers)."""
    pids = [p.pid]
    try:
        out = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout
        pids += [int(x) for x in out.split()]
    except OSError:
        pass
    return pids


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / TICK


def pss_kib(pids):
    """Proportional set size: pages shared between processes (nginx's master and workers)
    counted once overall."""
    total = 0
    for pid in pids:
        try:
            for line in open(f"/proc/{pid}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def rss_kib(pids, field):
    total = 0
    for pid in pids:
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def ms(value, unit):
    v = float(value)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def wrk(url, secs, conc, script=None):
    cmd = ["wrk", "-t1", f"-c{conc}", f"-d{secs}s", "--latency"]
    if script:
        cmd += ["-s", os.path.join(ROOT, "bench", script)]
    out = subprocess.run(cmd + [url], capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    lat = {p: ms(*re.search(rf"^\s*{p}%\s+([\d.]+)(us|ms|s)", out, re.M).groups()) for p in (50, 99)}
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = (int(bad.group(1)) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0)
    return {"rps": rps, "requests": total, "p50": lat[50], "p99": lat[99], "failed": failed}


def h2load(url, secs, conc, frame):
    logf = os.path.join(WORK, "h2load.lat")
    out = subprocess.run(
        ["h2load", "-D", str(secs), "-c", "8", "-m", str(max(1, conc // 8)), "-t", "1", "-d", frame,
         "-H", "content-type: application/grpc", "-H", "te: trailers", f"--log-file={logf}", url],
        capture_output=True, text=True).stdout
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed", out)
    lat = sorted(int(l.split()[2]) for l in open(logf) if l.strip())
    return {"rps": rps, "requests": int(done.group(2)), "p50": lat[len(lat) // 2] / 1000,
            "p99": lat[int(len(lat) * 0.99)] / 1000, "failed": int(done.group(3))}


def measured(proc, load):
    """Runs `load` and adds the proxy's CPU per 10k requests and its peak RSS."""
    pids = group_pids(proc) if proc else []
    before = cpu_seconds(pids)
    r = load()
    if proc:
        r["cpu_10k"] = (cpu_seconds(pids) - before) / max(r["requests"], 1) * 10_000
        r["rss_mib"] = rss_kib(pids, "VmHWM") / 1024
    return r


def alternate(contenders, run):
    """Each contender twice, in A B C then C B A order; means of the two runs."""
    results = {name: [] for name, _ in contenders}
    for order in (contenders, list(reversed(contenders))):
        for name, target in order:
            log(f"  {name}")
            results[name].append(run(name, target))
    mean = {}
    for name, runs in results.items():
        keys = runs[0].keys()
        mean[name] = {k: sum(r[k] for r in runs) / len(runs) for k in keys}
        # Failures add up: one failed request in either run must show.
        mean[name]["failed"] = sum(r["failed"] for r in runs)
        # Each run's throughput and tail, so that an outlier behind a mean can be seen.
        mean[name]["runs"] = [{"rps": r["rps"], "p99": r["p99"]} for r in runs]
    return mean


# ------------------------------------------------------------------ configurations
def gateway_config(name, body):
    path = os.path.join(WORK, f"{name}.yaml")
    with open(path, "w") as f:
        f.write(f"workers: {WORKERS}\nadmin: {{address: ''}}\nmetadata: {{backend: memory, grpc_address: ''}}\n{body}")
    return path


def start_gateway(name, body, port):
    cfg = gateway_config(name, f"listeners: [{{name: http, address: '127.0.0.1:{port}'}}]\n{body}")
    return start(name, [os.path.join(REL, "gateway"), "run", "--config", cfg], ready=port, env={"RUST_LOG": "warn"})


def envoy_config(name, listeners, cluster, h2_upstream=False):
    admin = free_port()
    h2 = ("    typed_extension_protocol_options:\n      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n"
          "        \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n"
          "        explicit_http_config: {http2_protocol_options: {}}\n") if h2_upstream else ""
    text = f"admin: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}}}\nstatic_resources:\n  listeners:\n"
    for port, filters in listeners:
        text += f"""  - address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: l{port}
          route_config: {{virtual_hosts: [{{name: all, domains: ["*"], routes: [{{match: {{prefix: "/"}}, route: {{cluster: backend, timeout: 5s}}}}]}}]}}
          http_filters:
{filters}          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
"""
    text += f"""  clusters:
  - name: backend
    type: STATIC
    connect_timeout: 1s
{h2}    load_assignment:
      cluster_name: backend
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {cluster}}}}}}}}}]}}]
"""
    path = os.path.join(WORK, f"{name}.yaml")
    open(path, "w").write(text)
    return path, admin


def start_envoy(name, listeners, cluster, h2_upstream=False):
    path, admin = envoy_config(name, listeners, cluster, h2_upstream)
    p = start(name, [ENVOY, "-c", path, "--concurrency", str(WORKERS), "--base-id", str(free_port()),
                     "--log-level", "error"], ready=listeners[0][0])
    return p


def start_nginx(name, port, backend, pinned=False):
    conf = os.path.join(WORK, f"{name}.conf")
    affinity = "worker_cpu_affinity auto;\n" if pinned else ""
    open(conf, "w").write(f"""worker_processes {WORKERS};
{affinity}pid {WORK}/{name}.pid;
error_log {WORK}/{name}.err;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  upstream be {{ server 127.0.0.1:{backend}; keepalive 256; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }}
  }}
}}
""")
    return start(name, ["nginx", "-c", conf, "-g", "daemon off;"], ready=port)


# ------------------------------------------------------------------ scenarios
def dubbo2():
    log("1. HTTP/JSON -> Dubbo2")
    provider = free_port()
    p = start("dubbo2-provider", [os.path.join(REL, "examples", "dubbo2_demo"), "--port", str(provider)], ready=provider)
    gw = free_port()
    g = start_gateway("dubbo2-gateway", f"""clusters: [{{name: demo, endpoints: ['127.0.0.1:{provider}']}}]
routes: [{{application: demo, cluster: demo}}]
services: [{{interface: org.apache.dubbo.demo.DemoService, methods: [{{name: sayHello, params: [{{type: java.lang.String}}]}}]}}]
""", gw)
    url = f"http://127.0.0.1:{gw}/demo/org.apache.dubbo.demo.DemoService/sayHello"
    wrk(url, 2, CONC, "sayhello.lua")

    def run(name, target):
        if name == "gateway":
            return measured(g, lambda: wrk(url, SECS, CONC, "sayhello.lua"))
        out = subprocess.run([os.path.join(REL, "examples", "dubbo2_load"), "--addr", f"127.0.0.1:{provider}",
                              "--concurrency", str(CONC), "--duration", str(SECS)], capture_output=True, text=True).stdout
        d = json.loads(out)
        return {"rps": d["rps"], "requests": d["rps"] * SECS, "p50": d["p50_ms"], "p99": d["p99_ms"],
                "failed": d["errors"], "cpu_10k": float("nan"), "rss_mib": float("nan")}
    r = alternate([("gateway", None), ("direct Dubbo2 client (anchor)", None)], run)
    stop(g)
    stop(p)
    return r


def http():
    log("2. HTTP -> HTTP")
    backend = free_port()
    b = start("http-backend", [os.path.join(REL, "examples", "http_backend"), "--port", str(backend), "--threads", "1"], ready=backend)
    gw, ev, ng, ngp = free_port(), free_port(), free_port(), free_port()
    procs = {
        "gateway": start_gateway("http-gateway", f"""clusters: [{{name: web, protocol: http, endpoints: ['127.0.0.1:{backend}']}}]
http_routes: [{{prefix: /, cluster: web}}]
""", gw),
        "Envoy 1.40 (anchor)": start_envoy("http-envoy", [(ev, "")], backend),
        "nginx 1.22": start_nginx("http-nginx", ng, backend),
        # The gateway pins its workers when there is one per CPU (pin_workers: auto); nginx
        # does so when told: shown both ways.
        "nginx 1.22, workers pinned": start_nginx("http-nginx-pinned", ngp, backend, pinned=True),
    }
    ports = {"gateway": gw, "Envoy 1.40 (anchor)": ev, "nginx 1.22": ng, "nginx 1.22, workers pinned": ngp}
    for port in ports.values():
        wrk(f"http://127.0.0.1:{port}/", 2, CONC)

    def run(name, _):
        if name == "backend alone (ceiling)":
            return measured(b, lambda: wrk(f"http://127.0.0.1:{backend}/", SECS, CONC))
        return measured(procs[name], lambda: wrk(f"http://127.0.0.1:{ports[name]}/", SECS, CONC))
    r = alternate([(n, None) for n in ports] + [("backend alone (ceiling)", None)], run)
    for p in procs.values():
        stop(p)
    stop(b)
    return r


def grpc():
    log("3./4. gRPC")
    desc = os.path.join(WORK, "echo.pb")
    subprocess.run([PY, "-m", "grpc_tools.protoc", f"-I{ROOT}/peers/proto", "--include_imports",
                    f"--descriptor_set_out={desc}", f"{ROOT}/peers/proto/echo.proto"], check=True)
    frame = os.path.join(WORK, "frame.bin")
    open(frame, "wb").write(b"\x00\x00\x00\x00\x04\x0a\x02hi")
    backend = free_port()
    b = start("grpc-backend", [os.path.join(REL, "examples", "grpc_echo_backend"), "--threads", "1", "--port", str(backend)], ready=backend)
    gw, ej, eg = free_port(), free_port(), free_port()
    g = start_gateway("grpc-gateway", f"""descriptor_sets: ['{desc}']
clusters: [{{name: echo, protocol: grpc, endpoints: ['127.0.0.1:{backend}']}}]
grpc_routes: [{{prefix: /echo.Echo/, cluster: echo}}]
""", gw)
    transcoder = f"""          - name: envoy.filters.http.grpc_json_transcoder
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder
              proto_descriptor: {desc}
              services: [echo.Echo]
              auto_mapping: true
"""
    e = start_envoy("grpc-envoy", [(ej, transcoder), (eg, "")], backend, h2_upstream=True)
    json_url = lambda port: f"http://127.0.0.1:{port}/echo.Echo/Unary"
    for port in (gw, ej):
        for _ in range(100):
            ok = subprocess.run(["curl", "-sf", "-X", "POST", "-H", "content-type: application/json",
                                 json_url(port), "-d", '{"text":"hi"}'], capture_output=True, text=True).stdout
            if "unary:hi" in ok:
                break
            time.sleep(0.1)
        else:
            raise SystemExit(f"no transcoded answer on :{port}")
        wrk(json_url(port), 2, CONC, "echo_json.lua")
    json_ports = {"gateway": (g, gw), "Envoy 1.40 grpc_json_transcoder (anchor)": (e, ej)}
    r3 = alternate([(n, None) for n in json_ports],
                   lambda n, _: measured(json_ports[n][0], lambda: wrk(json_url(json_ports[n][1]), SECS, CONC, "echo_json.lua")))
    grpc_ports = {"gateway": (g, gw), "Envoy 1.40 (anchor)": (e, eg), "backend alone (ceiling)": (b, backend)}
    r4 = alternate([(n, None) for n in grpc_ports],
                   lambda n, _: measured(grpc_ports[n][0], lambda: h2load(json_url(grpc_ports[n][1]), SECS, CONC, frame)))
    for p in (g, e, b):
        stop(p)
    return r3, r4


def memory():
    log("5. memory")
    backend = free_port()
    b = start("mem-backend", [os.path.join(REL, "examples", "http_backend"), "--port", str(backend), "--threads", "1"], ready=backend)
    out = {}
    for name in ("gateway", "Envoy 1.40 (anchor)", "nginx 1.22"):
        port = free_port()
        if name == "gateway":
            p = start_gateway("mem-gateway", f"""clusters: [{{name: web, protocol: http, endpoints: ['127.0.0.1:{backend}']}}]
http_routes: [{{prefix: /, cluster: web}}]
""", port)
        elif name.startswith("Envoy"):
            p = start_envoy("mem-envoy", [(port, "")], backend)
        else:
            p = start_nginx("mem-nginx", port, backend)
        subprocess.run(["curl", "-sf", f"http://127.0.0.1:{port}/"], capture_output=True)
        time.sleep(1)
        pids = group_pids(p)
        idle = pss_kib(pids) / 1024
        r = wrk(f"http://127.0.0.1:{port}/", 5, 1000)
        peak = rss_kib(pids, "VmHWM") / 1024
        out[name] = {"idle": idle, "peak": peak, "rps": r["rps"], "failed": r["failed"]}
        stop(p)
    stop(b)
    return out


def xds_scale():
    log("6. xDS scale")
    out = subprocess.run(["bash", os.path.join(ROOT, "bench", "xds_scale.sh")], capture_output=True, text=True)
    if out.returncode != 0 or not out.stdout.strip():
        tail = "\n".join(out.stderr.strip().splitlines()[-10:])
        return f"`bench/xds_scale.sh` failed (exit {out.returncode}):\n\n```\n{tail}\n```"
    return out.stdout.strip()


# ------------------------------------------------------------------ report
def table(title, rows, anchor):
    lines = [f"**{title}**", "", "| contender | req/s | p50 ms | p99 ms | CPU s / 10k req | peak RSS MiB | failed | req/s vs anchor |",
             "|---|---|---|---|---|---|---|---|"]
    base = rows[anchor]["rps"]
    for name, r in rows.items():
        cpu = "" if r["cpu_10k"] != r["cpu_10k"] else f"{r['cpu_10k']:.2f}"
        rss = "" if r["rss_mib"] != r["rss_mib"] else f"{r['rss_mib']:.0f}"
        lines.append(f"| {name} | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {cpu} | {rss} | {r['failed']:.0f} | {r['rps'] / base:.2f}x |")
    # A mean hides which run made it: say so when the two runs' tails are far apart.
    for name, r in rows.items():
        tails = [run["p99"] for run in r.get("runs", [])]
        if len(tails) > 1 and min(tails) > 0 and max(tails) / min(tails) > 3:
            shown = " and ".join(f"{t:.2f}" for t in tails)
            lines.append(f"\n{name}: p99 of its two runs {shown} ms (the mean above hides an outlier run).")
    return "\n".join(lines)


def svg(scenarios):
    """Grouped bars of req/s per scenario (p99 in ms written on each bar)."""
    def color(name):
        if name.startswith("gateway"):
            return "#2b6cb0"
        if name.startswith("Envoy"):
            return "#c05621"
        if name.startswith("nginx"):
            return "#2f855a"
        return "#a0aec0"  # ceilings and direct clients
    width, height, left, top, bottom = 900, 380, 60, 40, 110
    groups = [(title, rows) for title, rows in scenarios]
    top_rps = max(r["rps"] for _, rows in groups for r in rows.values())
    gw = (width - left - 20) / len(groups)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
           f'<text x="{left}" y="20" font-size="14">Benchmark suite: req/s (bar) and p99 ms (label), {CONC} connections, {SECS}s x 2</text>']
    plot_h = height - top - bottom
    for gi, (title, rows) in enumerate(groups):
        x0 = left + gi * gw
        bw = (gw - 20) / len(rows)
        for i, (name, r) in enumerate(rows.items()):
            h = r["rps"] / top_rps * plot_h
            x = x0 + 10 + i * bw
            y = top + plot_h - h
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw - 4:.1f}" height="{h:.1f}" fill="{color(name)}"><title>{name}: {r["rps"]:,.0f} req/s, p99 {r["p99"]:.2f} ms</title></rect>')
            out.append(f'<text x="{x + (bw - 4) / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle">{r["p99"]:.2f}</text>')
            out.append(f'<text x="{x + (bw - 4) / 2:.1f}" y="{top + plot_h + 12 + (i % 2) * 12:.1f}" text-anchor="middle" font-size="9">{name.split(" (")[0][:18]}</text>')
        out.append(f'<text x="{x0 + gw / 2:.1f}" y="{height - 45}" text-anchor="middle" font-weight="bold">{title}</text>')
    out.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 20}" y2="{top + plot_h}" stroke="black"/>')
    for i, (label, sample) in enumerate([("gateway", "gateway"), ("Envoy 1.40", "Envoy"), ("nginx 1.22", "nginx"),
                                          ("backend alone / direct client", "ceiling")]):
        x = left + i * 190
        out.append(f'<rect x="{x}" y="{height - 16}" width="10" height="10" fill="{color(sample)}"/>')
        out.append(f'<text x="{x + 14}" y="{height - 7}">{label}</text>')
    out.append(f'<text x="5" y="{top + 10}">{top_rps:,.0f}</text><text x="5" y="{top + plot_h}">0</text>')
    out.append("</svg>")
    return "\n".join(out)


def main():
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        s1 = dubbo2()
        s2 = http()
        s3, s4 = grpc()
        s5 = memory()
        s6 = xds_scale()
    finally:
        for p in PROCS:
            if p.poll() is None:
                stop(p)
    cpus = os.cpu_count()
    parts = [f"Run of {started} (`bench/run.sh {SECS} {CONC}`), {cpus} cores shared by load generator, proxy and backend; "
             f"every proxy with {WORKERS} worker threads (the gateway's pinned one per CPU, its default here; Envoy's and nginx's not, unless said); wrk/h2load 1 thread, {CONC} connections (h2load: 8 connections x {max(1, CONC // 8)} streams); "
             f"each contender twice, alternated, mean shown. CPU is the proxy's user+system time; peak RSS is the process's lifetime peak (in 4 it includes 3, run by the same processes). "
             f"h2load counts HTTP failures only: a gRPC error status inside a 200 is not seen (the backends answer every call).", "",
             table("1. HTTP/JSON -> Dubbo2 (sayHello)", s1, "direct Dubbo2 client (anchor)"), "",
             table("2. HTTP -> HTTP proxying", s2, "Envoy 1.40 (anchor)"), "",
             table("3. HTTP/JSON -> gRPC (echo.Echo/Unary)", s3, "Envoy 1.40 grpc_json_transcoder (anchor)"), "",
             table("4. gRPC -> gRPC proxying", s4, "Envoy 1.40 (anchor)"), "",
             "**5. Memory** (idle: proportional set size after one request; peak: the processes' peak RSS "
             "(VmHWM, summed over nginx's master and workers, so an upper bound there) under wrk with 1,000 connections for 5 s)", "",
             "| contender | idle MiB | peak MiB, 1,000 connections | req/s at 1,000 connections | failed | idle vs Envoy | peak vs Envoy |",
             "|---|---|---|---|---|---|---|"]
    envoy = s5["Envoy 1.40 (anchor)"]
    for name, m in s5.items():
        parts.append(f"| {name} | {m['idle']:.1f} | {m['peak']:.1f} | {m['rps']:,.0f} | {m['failed']} | {m['idle'] / envoy['idle']:.2f}x | {m['peak'] / envoy['peak']:.2f}x |")
    parts += ["", "**6. xDS scale**", "", s6, "", "![suite](bench-suite.svg)"]
    report = "\n".join(parts)
    print(report)
    doc = os.path.join(ROOT, "docs", "benchmarks.md")
    text = open(doc).read()
    begin, end = "<!-- suite:begin -->", "<!-- suite:end -->"
    block = f"{begin}\n{report}\n{end}"
    text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S) if begin in text else text + "\n" + block + "\n"
    open(doc, "w").write(text)
    plotted = [("1 JSON->Dubbo2", s1), ("2 HTTP proxy", s2), ("3 JSON->gRPC", s3), ("4 gRPC proxy", s4)]
    json.dump({"secs": SECS, "conc": CONC, "scenarios": plotted},
              open(os.path.join(ROOT, "docs", "bench-suite.json"), "w"), indent=1)
    open(os.path.join(ROOT, "docs", "bench-suite.svg"), "w").write(svg(plotted))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--plot"]:
        # Redraw docs/bench-suite.svg from the last run's docs/bench-suite.json.
        saved = json.load(open(os.path.join(ROOT, "docs", "bench-suite.json")))
        SECS, CONC = saved["secs"], saved["conc"]
        open(os.path.join(ROOT, "docs", "bench-suite.svg"), "w").write(svg(saved["scenarios"]))
    else:
        main()
