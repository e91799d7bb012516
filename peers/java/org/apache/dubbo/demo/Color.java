package org.apache.dubbo.demo;

/** Demo enum for the enum golden cases. */
public enum Color {
    RED,
    GREEN,
    BLUE
}
