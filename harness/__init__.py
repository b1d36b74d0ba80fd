"""What the test tiers and the benchmarks share: test images, client tools, server control.

It lives outside ``tests/`` so that benchmarks never import test code, and outside the plugin
package so that it is never installed with it.
"""
