"""The Synapse fixture itself: the server is up, accounts work, and two people can talk."""

from __future__ import annotations

from tests.fixtures.synapse import SynapseServer, person


async def test_two_people_talk_over_the_real_homeserver(synapse_server: SynapseServer) -> None:
    bob = synapse_server.register("bob")
    async with person(synapse_server, synapse_server.human) as ann, person(synapse_server, bob) as bobby:
        room = await ann.create_room(invite=(bob.user_id,))
        await bobby.wait_for(lambda r, e: r == room and e["type"] == "esxbot.test.invite")
        await bobby.join(room)
        await ann.wait_for_join(room, bob.user_id)
        event_id = await bobby.say(room, "hello ann")
        message = await ann.wait_for_message(room, bob.user_id)
        assert message["event_id"] == event_id
        assert message["content"]["body"] == "hello ann"
    assert synapse_server.startup_seconds < 30
