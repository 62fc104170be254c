"""Masks for hidden components, built for a whole room at once.

A game that declares ``hidden_components`` returns, from ``visibility``, a
players x entities mask per hidden component (tickroom.simulation.game,
Visibility). The two shapes nearly every game needs, vectorised:

    Visibility(players, mask, components={
        "hand": owner_only(players, owner),          # a card's face: its holder
        "gold": same_group(team_of_player, team),    # a team's resources: that team
    })
"""

from __future__ import annotations

import numpy as np


def owner_only(players: np.ndarray, owners: np.ndarray) -> np.ndarray:
    """players x entities: player i sees entity j's component iff
    ``owners[j] == players[i]`` (``owners`` holds each entity's owner id,
    one per column of the view; an id no player has hides it from all)."""
    return np.asarray(players)[:, None] == np.asarray(owners)[None, :]


def same_group(player_groups: np.ndarray, entity_groups: np.ndarray) -> np.ndarray:
    """players x entities: player i sees entity j's component iff they are
    in the same group (a team, a table); a negative group is nobody's."""
    pg = np.asarray(player_groups)[:, None]
    eg = np.asarray(entity_groups)[None, :]
    return (pg == eg) & (eg >= 0)
