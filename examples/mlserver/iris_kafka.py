"""The Python side of the MLServer example (run.sh).

    python iris_kafka.py train MODEL_DIR
        Fits scikit-learn's LogisticRegression on the iris data it ships and saves it as
        MODEL_DIR/model.joblib, which MLServer's scikit-learn runtime serves.

    python iris_kafka.py check BOOTSTRAP TRANSPORT INPUT OUTPUT MODEL_DIR
        Sends Open Inference Protocol (v2) requests for every iris flower to the sidecar's input topic,
        as JSON (TRANSPORT rest) or as inference.ModelInferRequest protobuf (grpc), asking for the
        outputs predict and predict_proba; reads the answers from the output topic and checks that
        they equal what the same model gives in scikit-learn itself. Exits 1 on any difference.
"""
import json
import sys
import time
import uuid

import joblib
import numpy as np
from confluent_kafka import Consumer, Producer, TopicPartition
from mlserver.grpc import dataplane_pb2 as pb
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

BATCH = 10  # flowers a request


def train(model_dir):
    iris = load_iris()
    model = LogisticRegression(max_iter=1000).fit(iris.data, iris.target)
    joblib.dump(model, f"{model_dir}/model.joblib")
    print(f"trained {model!r} on {len(iris.data)} flowers into {model_dir}/model.joblib")


def rest_request(rows):
    return json.dumps(
        {
            "inputs": [{"name": "input-0", "shape": list(rows.shape), "datatype": "FP64", "data": rows.ravel().tolist()}],
            "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
        }
    ).encode(), [("Content-Type", b"application/json")]


def grpc_request(rows):
    # model_name is left empty: the sidecar fills in the graph node's name, iris.
    req = pb.ModelInferRequest(
        inputs=[
            pb.ModelInferRequest.InferInputTensor(
                name="input-0",
                datatype="FP64",
                shape=list(rows.shape),
                contents=pb.InferTensorContents(fp64_contents=rows.ravel().tolist()),
            )
        ],
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name=n) for n in ("predict", "predict_proba")],
    )
    return req.SerializeToString(), [("proto-name", b"inference.ModelInferRequest")]


DTYPES = {"FP64": np.float64, "FP32": np.float32, "INT64": np.int64, "INT32": np.int32}


def rest_outputs(value):
    answer = json.loads(value)
    return {o["name"]: np.array(o["data"], dtype=DTYPES[o["datatype"]]).reshape(o["shape"]) for o in answer["outputs"]}


def grpc_outputs(value):
    answer = pb.ModelInferResponse()
    answer.ParseFromString(value)
    out = {}
    for i, o in enumerate(answer.outputs):
        if answer.raw_output_contents:
            data = np.frombuffer(answer.raw_output_contents[i], dtype=np.dtype(DTYPES[o.datatype]).newbyteorder("<"))
        else:
            field = {"FP64": "fp64_contents", "FP32": "fp32_contents", "INT64": "int64_contents", "INT32": "int_contents"}[o.datatype]
            data = np.array(getattr(o.contents, field), dtype=DTYPES[o.datatype])
        out[o.name] = data.reshape(list(o.shape))
    return out


def check(bootstrap, transport, in_topic, out_topic, model_dir):
    model = joblib.load(f"{model_dir}/model.joblib")
    iris = load_iris()
    batches = [iris.data[i : i + BATCH] for i in range(0, len(iris.data), BATCH)]
    make, read = (rest_request, rest_outputs) if transport == "rest" else (grpc_request, grpc_outputs)

    # Answers are read from the output topic's end as it is before the requests go.
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"mlserver-example-{uuid.uuid4()}", "enable.auto.commit": False})
    parts = consumer.list_topics(out_topic, timeout=30).topics[out_topic].partitions
    tps = []
    for p in parts:
        _, high = consumer.get_watermark_offsets(TopicPartition(out_topic, p), timeout=30)
        tps.append(TopicPartition(out_topic, p, high))
    consumer.assign(tps)

    run = uuid.uuid4().hex[:8]
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i, rows in enumerate(batches):
        value, headers = make(rows)
        producer.produce(in_topic, key=f"{run}-{i}", value=value, headers=headers + [("Seldon-Puid", f"{run}-{i}".encode())])
    if producer.flush(30) != 0:
        sys.exit(f"{transport}: requests not delivered to {in_topic}")

    answers, deadline = {}, time.time() + 120
    while len(answers) < len(batches) and time.time() < deadline:
        m = consumer.poll(0.5)
        if m is None or m.error() or not (m.key() or b"").decode().startswith(run + "-"):
            continue
        answers[int(m.key().decode().split("-")[1])] = m
    consumer.close()
    if len(answers) < len(batches):
        sys.exit(f"{transport}: {len(answers)} of {len(batches)} answers within 120 s")

    flowers = 0
    for i, rows in enumerate(batches):
        m = answers[i]
        headers = {k: v.decode() for k, v in (m.headers() or [])}
        if "Seldon-Error-Reason" in headers:
            sys.exit(f"{transport}: request {i}: error record {headers}")
        got = read(m.value())
        want_class, want_proba = model.predict(rows), model.predict_proba(rows)
        if not np.array_equal(got["predict"].ravel(), want_class):
            sys.exit(f"{transport}: request {i}: MLServer's predict {got['predict'].ravel()} differs from scikit-learn's {want_class}")
        if not np.array_equal(got["predict_proba"], want_proba):
            worst = np.abs(got["predict_proba"] - want_proba).max()
            sys.exit(f"{transport}: request {i}: predict_proba differs from scikit-learn's by up to {worst}")
        flowers += len(rows)
    names = iris.target_names
    print(f"{transport}: {flowers} flowers in {len(batches)} records through Kafka; every predict and predict_proba equals scikit-learn's")
    first = read(answers[0].value())
    print(f"{transport}: e.g. {iris.data[0].tolist()} -> {names[first['predict'].ravel()[0]]}, probabilities {np.round(first['predict_proba'][0], 4).tolist()}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "train":
        train(sys.argv[2])
    elif len(sys.argv) == 7 and sys.argv[1] == "check":
        check(*sys.argv[2:])
    else:
        sys.exit(__doc__)
