-- Who consumes each partition, as the consumers themselves report it (every few seconds),
-- with the partition's end as they last saw it. Beside consumer_offsets it shows partitions
-- that have lag but no live owner: a broker that keeps dead members in the group (seen with
-- tansu) leaves their partitions unread while nothing errors.
CREATE TABLE partition_owners (
    group_id       TEXT        NOT NULL,
    topic          TEXT        NOT NULL,
    partition      INTEGER     NOT NULL,
    owner          TEXT,
    heartbeat_at   TIMESTAMPTZ,
    high_watermark BIGINT      NOT NULL DEFAULT 0,
    seen_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);
