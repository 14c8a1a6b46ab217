"""The catalogue: every path of the three zones and every read and write of the batch.

Stages (features/, models/, expectations/, reports/) are pure functions of tables; this
package loads their inputs and saves their outputs, as kedro's catalogue does for its nodes.
"""
