"""The tests' S3-compatible store: a moto server process on 127.0.0.1 (a fake as
localstripe is one: real HTTP, Amazon's API, nothing patched in our process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.postgres import _free_port, wait_for_port

# What boto3 needs to sign requests to the fake (it checks nothing more).
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test-deploy",
    "AWS_SECRET_ACCESS_KEY": "test-deploy-secret",
    "AWS_DEFAULT_REGION": "eu-central-1",
}


class S3Server:
    def __init__(self) -> None:
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> S3Server:
        program = Path(sys.executable).parent / "moto_server"
        self.process = subprocess.Popen(
            [str(program), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(self.port, self.process, "moto_server")
        except RuntimeError:
            self.stop()
            raise
        return self

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        )

    def bucket(self, name: str) -> str:
        self.client().create_bucket(
            Bucket=name,
            CreateBucketConfiguration={"LocationConstraint": CREDENTIALS["AWS_DEFAULT_REGION"]},
        )
        return name

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None
