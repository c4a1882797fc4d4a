"""moatless python3 runtime: the Lambda Runtime API loop (2018-06-01) for Python handlers.

_HANDLER is "package/module.function" relative to LAMBDA_TASK_ROOT. The handler is called as
handler(event, context); its return value is sent as JSON, an exception as the Lambda error shape.
"""
import http.client
import importlib
import json
import os
import sys
import time
import traceback

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
TASK_ROOT = os.environ.get("LAMBDA_TASK_ROOT", "/var/task")
_conn = None


def call(method, path, body=None, headers=None):
    global _conn
    for attempt in (0, 1):
        if _conn is None:
            host, port = API.split(":")
            _conn = http.client.HTTPConnection(host, int(port))  # no timeout: /next long-polls
        try:
            _conn.request(method, "/2018-06-01" + path, body=body, headers=headers or {})
            res = _conn.getresponse()
            return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
        except (http.client.HTTPException, ConnectionError):
            _conn.close()
            _conn = None
            if attempt == 1:
                raise


def error_shape(exc, error_type=None):
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": [line.strip() for line in traceback.format_tb(exc.__traceback__)],
    }


def post_error(path, exc, header_type, error_type=None):
    call("POST", path, json.dumps(error_shape(exc, error_type)).encode(),
         {"Content-Type": "application/vnd.aws.lambda.error+json",
          "Lambda-Runtime-Function-Error-Type": header_type})


def _header_json(value):
    """The optional Client-Context / Cognito-Identity headers carry JSON; None when absent."""
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


class Context:
    def __init__(self, headers):
        self.aws_request_id = headers.get("lambda-runtime-aws-request-id")
        self.invoked_function_arn = headers.get("lambda-runtime-invoked-function-arn")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self._deadline_ms = int(headers.get("lambda-runtime-deadline-ms", "0"))
        self.client_context = _header_json(headers.get("lambda-runtime-client-context"))
        self.identity = _header_json(headers.get("lambda-runtime-cognito-identity"))

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - int(time.time() * 1000))


class InitError(Exception):
    def __init__(self, error_type, message):
        super().__init__(message)
        self.error_type = error_type


def load_handler():
    spec = os.environ.get("_HANDLER", "")
    module_name, _, function_name = spec.rpartition(".")
    if not module_name or not function_name:
        raise InitError("Runtime.MalformedHandlerName",
                        "Bad handler '%s': expected module.function" % spec)
    sys.path.insert(0, TASK_ROOT)
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except Exception as exc:  # any failure while importing is an init error
        raise InitError("Runtime.ImportModuleError",
                        "Unable to import module '%s': %s" % (module_name, exc)) from exc
    handler = getattr(module, function_name, None)
    if not callable(handler):
        raise InitError("Runtime.HandlerNotFound",
                        "Handler '%s' missing on module '%s'" % (function_name, module_name))
    return handler


def main():
    try:
        handler = load_handler()
    except InitError as exc:
        print("%s: %s" % (exc.error_type, exc), file=sys.stderr)
        post_error("/runtime/init/error", exc, exc.error_type, exc.error_type)
        sys.exit(1)
    while True:
        status, headers, body = call("GET", "/runtime/invocation/next")
        if status != 200:
            print("runtime API /next answered %d" % status, file=sys.stderr)
            sys.exit(1)
        request_id = headers.get("lambda-runtime-aws-request-id")
        if headers.get("lambda-runtime-trace-id"):
            os.environ["_X_AMZN_TRACE_ID"] = headers["lambda-runtime-trace-id"]
        try:
            event = json.loads(body or b"null")
        except ValueError as exc:
            post_error("/runtime/invocation/%s/error" % request_id, exc,
                       "Runtime.InvalidEventData", "Runtime.InvalidEventData")
            continue
        try:
            result = handler(event, Context(headers))
            payload = json.dumps(result).encode()
        except Exception as exc:  # the handler's failure is the invocation's error
            traceback.print_exc()
            post_error("/runtime/invocation/%s/error" % request_id, exc, "Unhandled")
            continue
        status, _, _ = call("POST", "/runtime/invocation/%s/response" % request_id, payload,
                            {"Content-Type": "application/json"})
        if status == 413:
            post_error("/runtime/invocation/%s/error" % request_id,
                       Exception("Response payload size exceeded maximum allowed payload size"),
                       "Function.ResponseSizeTooLarge", "Function.ResponseSizeTooLarge")


if __name__ == "__main__":
    main()
