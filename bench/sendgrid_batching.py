"""How long 1,000 emails take to reach the fake SendGrid: batched, or one a request.

`python -m bench.sendgrid_batching [--latency-ms 100] [--sample 200]` prints one
JSON line; docs/vendors.md gives the figures that chose the batching.
"""

import argparse
import json
import os
import time

import django


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--sample", type=int, default=200)
    options = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    django.setup()
    print(json.dumps(measure(options.messages, options.latency_ms, options.sample)))


def measure(count: int, latency_ms: int, sample: int) -> dict:
    from anymail.message import AnymailMessage

    from vendors.base import OutboundMessage
    from vendors.sendgrid import SendGridAdapter
    from vendors.sendgrid_fake import SendGridFake

    fake = SendGridFake(latency_ms=latency_ms).start()
    try:
        adapter = SendGridAdapter(
            api_key=fake.api_key,
            api_url=fake.api_url,
            from_email="news@crm.example.com",
            verification_key=fake.public_key,
        )
        body = "Hi Ann, you have spent $120 and visited 7 times. Get 10% off! " * 4
        messages = [
            OutboundMessage(f"s{n}", "email", f"p{n}@example.com", body, "Our sale")
            for n in range(count)
        ]
        started = time.perf_counter()
        adapter.send_batch(messages)
        batched = time.perf_counter() - started
        batched_requests = len(fake.accepted_requests)
        started = time.perf_counter()
        for message in messages[:sample]:
            adapter.backend.send_messages(
                [
                    AnymailMessage(
                        subject=message.subject,
                        body=message.body,
                        from_email=adapter.from_email,
                        to=[message.to],
                        metadata={"send_id": message.send_id},
                    )
                ]
            )
        one_each = (time.perf_counter() - started) / sample * count
    finally:
        fake.stop()
    return {
        "messages": count,
        "latency_ms": latency_ms,
        "batched_requests": batched_requests,
        "batched_s": round(batched, 3),
        "one_request_each_s": round(one_each, 3),
    }


if __name__ == "__main__":
    main()
