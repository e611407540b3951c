"""A real SMTP server for the tests (aiosmtpd), on loopback.

Every message it accepts is written to DIR as <n>.eml, its envelope beside it as <n>.json.
Recipients whose local part starts with "reject" get a permanent 550 at RCPT, as a mail
server answers an address that does not exist; a message to one that starts with "slow" is
answered only after 60 s, as a server that stalls mid-conversation. It prints "ready" once it
listens.

    python smtp_server.py PORT DIR
"""

import asyncio
import json
import os
import sys

from aiosmtpd.controller import Controller


class Recorder:
    def __init__(self, directory):
        self.directory = directory

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@")[0].lower().startswith("reject"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(r.split("@")[0].lower().startswith("slow") for r in envelope.rcpt_tos):
            await asyncio.sleep(60)
            return "451 4.3.0 Too slow, try again"
        name = f"{len(os.listdir(self.directory)) // 2 + 1:05d}-{os.getpid()}"
        with open(os.path.join(self.directory, name + ".eml.tmp"), "wb") as f:
            f.write(envelope.original_content)
        with open(os.path.join(self.directory, name + ".json"), "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}, f)
        os.rename(os.path.join(self.directory, name + ".eml.tmp"), os.path.join(self.directory, name + ".eml"))
        return "250 Message accepted for delivery"


async def main(port, directory):
    controller = Controller(Recorder(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
