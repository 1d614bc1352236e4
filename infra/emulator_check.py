"""Checks the emulator's patched transactions: a cancelled transaction leaves
every item as it was, a committed one applies every item. Run by make test
before the Rust tests, on a scratch table."""

import os
import sys

import boto3

TABLE = "emulator-check"


def main() -> int:
    db = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    if TABLE not in db.list_tables()["TableNames"]:
        db.create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    db.put_item(TableName=TABLE, Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    db.put_item(TableName=TABLE, Item={"pk": {"S": "c"}, "n": {"N": "1"}})
    db.delete_item(TableName=TABLE, Key={"pk": {"S": "b"}})
    items = [
        {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "b"}}, "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Update": {"TableName": TABLE, "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET n = n + :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"ConditionCheck": {"TableName": TABLE, "Key": {"pk": {"S": "c"}}, "ConditionExpression": "n = :never",
                            "ExpressionAttributeValues": {":never": {"N": "99"}}}},
    ]
    try:
        db.transact_write_items(TransactItems=items)
        print("emulator check: a transaction with a failing condition committed", file=sys.stderr)
        return 1
    except db.exceptions.TransactionCanceledException:
        pass
    a = db.get_item(TableName=TABLE, Key={"pk": {"S": "a"}}, ConsistentRead=True)["Item"]
    b = db.get_item(TableName=TABLE, Key={"pk": {"S": "b"}}, ConsistentRead=True).get("Item")
    if a["n"]["N"] != "1" or b is not None:
        print(f"emulator check: cancelled transaction left changes: a={a} b={b}", file=sys.stderr)
        return 1
    db.transact_write_items(TransactItems=items[:2])
    a = db.get_item(TableName=TABLE, Key={"pk": {"S": "a"}}, ConsistentRead=True)["Item"]
    b = db.get_item(TableName=TABLE, Key={"pk": {"S": "b"}}, ConsistentRead=True).get("Item")
    if a["n"]["N"] != "2" or b is None:
        print(f"emulator check: committed transaction incomplete: a={a} b={b}", file=sys.stderr)
        return 1
    print("emulator check: transactions roll back and commit whole")
    return 0


if __name__ == "__main__":
    sys.exit(main())
