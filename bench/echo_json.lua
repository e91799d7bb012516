-- wrk: POST the Echo request as JSON (bench/grpc.sh)
wrk.method = "POST"
wrk.body = '{"text": "hi"}'
wrk.headers["Content-Type"] = "application/json"
