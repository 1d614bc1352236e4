"""Creates the table from template.yaml and verifies the sender's domain in SES.

template.yaml is the single source of the table's key schema, indexes and
TTL: this reads the CreditsTable resource and creates exactly that, so the
emulator and AWS cannot drift apart. Idempotent: an existing table is kept.

Environment: AWS_ENDPOINT_URL (the emulator), AWS_REGION, TABLE_NAME,
SENDER_EMAIL.
"""

import os
import sys
import time
from pathlib import Path

import boto3
import yaml

ROOT = Path(__file__).resolve().parent.parent
TABLE_KEYS = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode")


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !Sub, ...) as plain values."""


def _any_tag(loader, _suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


CfnLoader.add_multi_constructor("!", _any_tag)


def table_definition(template: Path = ROOT / "template.yaml") -> dict:
    doc = yaml.load(template.read_text(), Loader=CfnLoader)
    props = doc["Resources"]["CreditsTable"]["Properties"]
    definition = {k: props[k] for k in TABLE_KEYS if k in props}
    return definition, props.get("TimeToLiveSpecification")


def main() -> int:
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        print("bootstrap.py: AWS_ENDPOINT_URL must point at the emulator", file=sys.stderr)
        return 1
    table = os.environ["TABLE_NAME"]
    sender = os.environ["SENDER_EMAIL"]
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)
    definition, ttl = table_definition()
    if table not in dynamodb.list_tables()["TableNames"]:
        dynamodb.create_table(TableName=table, **definition)
        dynamodb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1})
        if ttl:
            dynamodb.update_time_to_live(
                TableName=table,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        print(f"created table {table}")
    ses = boto3.client("sesv2", endpoint_url=endpoint)
    domain = sender.split("@", 1)[1].lower()
    try:
        ses.get_email_identity(EmailIdentity=domain)
    except ses.exceptions.NotFoundException:
        ses.create_email_identity(EmailIdentity=domain)
        print(f"verified sender domain {domain}")
    return 0


def wait_for(endpoint: str, seconds: float = 30) -> None:
    """Blocks until the emulator answers."""
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).read()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise SystemExit(f"the emulator did not answer at {endpoint} within {seconds}s")
            time.sleep(0.2)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--wait":
        wait_for(os.environ["AWS_ENDPOINT_URL"])
    sys.exit(main())
