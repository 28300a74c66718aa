"""Opening the DynamoDB index from settings and creating its tables, mixed into
:class:`pypicloud.index.dynamo.DynamoIndex`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

import botocore.exceptions

from ..errors import ConfigError
from .dynamo_items import _CREDENTIAL_CODES, _NETWORK_ERRORS, GENERATION, NAME_INDEX, _dump


class DynamoTables:
    """``from_settings``, ``create_tables`` and ``delete_tables``."""

    if TYPE_CHECKING:
        client: Any  # a boto3 DynamoDB client
        files_table: str
        summary_table: str
        state_table: str

        def __init__(self, **kwargs: Any) -> None: ...

    @classmethod
    def from_settings(cls, settings) -> Self:
        tablenames = tuple(settings.get_list("db.tablenames", ()))
        if tablenames and len(tablenames) not in (2, 3):
            raise ConfigError(
                "db.tablenames",
                " ".join(tablenames),
                "two table names (files, summaries) and optionally a third (change counter and signed URLs)",
            )
        endpoint = settings.get_str("db.endpoint_url")
        host = settings.get_str("db.host")
        if endpoint is None and host is not None:  # 1.x: db.host, db.port, db.secure
            scheme = "https" if settings.get_bool("db.secure", False) else "http"
            endpoint = f"{scheme}://{host}:{settings.get_int('db.port', 8000, minimum=1)}"
        region = settings.get_str("db.region_name")
        if region is None and endpoint is not None:
            region = "us-east-1"  # a local endpoint still needs a region to sign for
        kwargs = {
            k: settings.get_str(f"db.{k}")
            for k in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "profile_name")
        }
        try:
            index = cls(
                region_name=region,
                endpoint_url=endpoint,
                namespace=settings.get_str("db.namespace", ""),
                tablenames=tablenames,
                create=False,
                **kwargs,
            )
        except botocore.exceptions.ProfileNotFound as exc:
            raise ConfigError("db.profile_name", kwargs["profile_name"], str(exc)) from None
        if index.client.meta.region_name is None:
            raise ConfigError("db.region_name", None, "a region (or db.endpoint_url / db.host)")
        try:
            index.create_tables()
        except botocore.exceptions.NoCredentialsError:
            raise ConfigError(
                "db.aws_access_key_id",
                None,
                "no AWS credentials found (set "
                "db.aws_access_key_id and db.aws_secret_access_key, or "
                "give the process a role or profile)",
            ) from None
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _CREDENTIAL_CODES or status == 403 or code == "403":
                raise ConfigError(
                    "db.aws_access_key_id", None, f"DynamoDB refused the credentials: {exc}"
                ) from None
            raise ConfigError("pypi.db", "dynamo", f"cannot use the DynamoDB tables: {exc}") from None
        except _NETWORK_ERRORS as exc:
            raise ConfigError(
                "db.endpoint_url" if endpoint else "db.region_name",
                endpoint or region,
                f"cannot reach DynamoDB: {exc}",
            ) from None
        return index

    # Tables ---------------------------------------------------------------
    def create_tables(self) -> None:
        """Create the three tables where they are missing (as 1.x did at start-up)."""
        existing = set()
        for page in self.client.get_paginator("list_tables").paginate():
            existing.update(page["TableNames"])
        created = []
        if self.files_table not in existing:
            self.client.create_table(
                TableName=self.files_table,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[
                    {"AttributeName": "filename", "AttributeType": "S"},
                    {"AttributeName": "name", "AttributeType": "S"},
                ],
                KeySchema=[{"AttributeName": "filename", "KeyType": "HASH"}],
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": NAME_INDEX,
                        "KeySchema": [{"AttributeName": "name", "KeyType": "HASH"}],
                        "Projection": {"ProjectionType": "ALL"},
                    }
                ],
            )
            created.append(self.files_table)
        for table, key in ((self.summary_table, "name"), (self.state_table, "key")):
            if table not in existing:
                self.client.create_table(
                    TableName=table,
                    BillingMode="PAY_PER_REQUEST",
                    AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                )
                created.append(table)
        waiter = self.client.get_waiter("table_exists")
        for table in created:
            waiter.wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        if self.state_table in created:
            try:
                self.client.update_time_to_live(
                    TableName=self.state_table,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
                )
            except botocore.exceptions.ClientError:
                pass  # only an optimisation: expired URLs are replaced anyway
        try:
            self.client.put_item(
                TableName=self.state_table,
                Item=_dump({"key": GENERATION, "value": 0}),
                ConditionExpression="attribute_not_exists(#k)",
                ExpressionAttributeNames={"#k": "key"},
            )
        except botocore.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def delete_tables(self) -> None:
        """Drop the three tables (tests, or dropping a deployment)."""
        for table in (self.files_table, self.summary_table, self.state_table):
            try:
                self.client.delete_table(TableName=table)
            except botocore.exceptions.ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise
