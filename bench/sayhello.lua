-- wrk script: POST sayHello("world") through the gateway's generic route.
wrk.method = "POST"
wrk.body = '["world"]'
wrk.headers["content-type"] = "application/json"
