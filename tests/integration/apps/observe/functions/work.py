def handler(event, context):
    params = event.get("queryStringParameters") or {}
    print("work", params.get("mode", "ok"))
    if params.get("mode") == "fail":
        raise RuntimeError("asked to fail")
    return {"statusCode": 200, "body": "ok"}
