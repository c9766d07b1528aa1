"""The bottom layer shared by every labsched package: argument checks, BLAS thread limits, name
registries, CSV/Markdown writers, figure saving and the episode loop.

Nothing here knows a domain (labs, Bayesian optimisation or the experiment queue); every other
package may import it, and it imports no other labsched package.
"""
